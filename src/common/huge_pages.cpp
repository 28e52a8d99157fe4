#include "common/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace reel {
namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}  // namespace

void* map_huge_page_region(size_t bytes, size_t* length) {
  const size_t len = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  // One huge page more than needed, so that an aligned start exists; the rest is unmapped.
  void* raw =
      ::mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) ::munmap(raw, aligned - start);
  if (const size_t tail = start + len + kHugePage - (aligned + len); tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + len), tail);
  void* p = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  ::madvise(p, len, MADV_HUGEPAGE);
#endif
  *length = len;
  return p;
}

void unmap_huge_page_region(void* p, size_t length) {
  ::munmap(p, length);
}

}  // namespace reel
