#!/usr/bin/env python3
"""Qwen3.5's thinking switch in the chat template (`enable_thinking`), rendered by transformers'
apply_chat_template, for Reel's --think and chat_template_kwargs.enable_thinking.

Writes tests/fixtures/tokenizer/qwen35-chat-template.json:
  templates  name -> Jinja text: "small" (Qwen3.5-0.8B/2B: thinking off unless
             enable_thinking is true), "large" (4B and up: thinking on unless it is false) and
             "qwen3vl" (no switch)
  cases      {template, enable_thinking (true, false or null = not passed), messages, text}

The official Qwen3.5 templates are not to be had offline here. These reproduce the parts Reel
reads, as the model cards and published copies of the templates show them: the turns
(<|im_start|>ROLE\\nCONTENT<|im_end|>\\n, the first system message only) and the generation
prompt, <|im_start|>assistant\\n followed by "<think>\\n" when thinking is on and by the empty
block "<think>\\n\\n</think>\\n\\n" when it is off; the two sizes differ only in which test
guards the branch ("enable_thinking is defined and enable_thinking is true" on the small
models, "... is false" on the larger ones); and the assistant turns' think blocks (TURNS35:
earlier turns lose their reasoning, those after the last user query keep it). The tests check
that Reel finds the switch and its default in such a file and renders what transformers
renders.

    python tools/reference/make_qwen35_template_fixtures.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import qwen3vl_vocab  # noqa: E402

OUT = HERE.parents[1] / "tests/fixtures/tokenizer/qwen35-chat-template.json"

TURNS = (
    "{%- for message in messages %}"
    "{%- if message.role == 'system' %}"
    "{%- if loop.first %}{{- '<|im_start|>system\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
)
# Qwen3.5's turns (as its published template renders messages of these three roles): an
# assistant turn's content is trimmed and split at "</think>"; turns before the last user query
# (ns.last_query_index, tool responses aside) keep only the answer, later ones are written with
# their reasoning in a think block (empty when there was none).
TURNS35 = (
    "{%- set ns = namespace(found=false, last_query_index=messages|length - 1) %}"
    "{%- for message in messages[::-1] %}"
    "{%- set c = message.content|trim %}"
    "{%- if not ns.found and message.role == 'user' and not (c.startswith('<tool_response>')"
    " and c.endswith('</tool_response>')) %}"
    "{%- set ns.found = true %}{%- set ns.last_query_index = messages|length - 1 - loop.index0 %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' %}"
    "{%- if loop.first %}{{- '<|im_start|>system\n' + message.content + '<|im_end|>\n' }}{%- endif %}"
    "{%- elif message.role == 'assistant' %}"
    "{%- set content = message.content|trim %}{%- set reasoning = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\n') %}"
    "{%- endif %}"
    "{%- if loop.index0 > ns.last_query_index %}"
    "{{- '<|im_start|>assistant\n<think>\n' + reasoning|trim + '\n</think>\n\n' + content + '<|im_end|>\n' }}"
    "{%- else %}{{- '<|im_start|>assistant\n' + content + '<|im_end|>\n' }}{%- endif %}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
)
TEMPLATES = {
    "small": TURNS35 + (
        "{%- if add_generation_prompt %}\n"
        "    {{- '<|im_start|>assistant\\n' }}\n"
        "    {%- if enable_thinking is defined and enable_thinking is true %}\n"
        "        {{- '<think>\\n' }}\n"
        "    {%- else %}\n"
        "        {{- '<think>\\n\\n</think>\\n\\n' }}\n"
        "    {%- endif %}\n"
        "{%- endif %}"),
    "large": TURNS35 + (
        "{%- if add_generation_prompt %}\n"
        "    {{- '<|im_start|>assistant\\n' }}\n"
        "    {%- if enable_thinking is defined and enable_thinking is false %}\n"
        "        {{- '<think>\\n\\n</think>\\n\\n' }}\n"
        "    {%- else %}\n"
        "        {{- '<think>\\n' }}\n"
        "    {%- endif %}\n"
        "{%- endif %}"),
    "qwen3vl": TURNS + "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
}

MESSAGES = [
    [{"role": "user", "content": "Describe this video."}],
    [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "What now?"}],
    # Earlier turns' reasoning leaves the context (thinking on: the generated text has no
    # opening tag, it was in the prompt; thinking off: the empty block).
    [{"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "The user greets me.\n</think>\n\nHello."},
     {"role": "user", "content": "What now?"},
     {"role": "assistant", "content": "<think>\n\n</think>\n\nWe wait. "},
     {"role": "user", "content": "And then?"}],
    # After the last user query (a continued answer): the reasoning stays, in a block, and a
    # turn without one gets an empty block.
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "<think>\nA greeting.\n\n</think>\n\n\nHello."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": " Hello </think> there"},
     {"role": "assistant", "content": "Plain."}],
]


def main() -> None:
    tok = qwen3vl_vocab.hf_tokenizer()
    cases = []
    for name, template in TEMPLATES.items():
        for think in (None, True, False):
            for messages in MESSAGES:
                kw = {} if think is None else {"enable_thinking": think}
                text = tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                                               add_generation_prompt=True, **kw)
                cases.append({"template": name, "enable_thinking": think, "messages": messages,
                              "text": text})
    OUT.write_text(json.dumps({"templates": TEMPLATES, "cases": cases}, indent=1, ensure_ascii=False)
                   + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
