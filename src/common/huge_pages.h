// Anonymous memory that asks Linux for transparent huge pages, shared by the model loader
// (`--hugepages`) and the bandwidth probe: a stream over 2 MiB pages spares a TLB miss and a
// restart of the hardware prefetcher every 4 KiB.
#pragma once

#include <cstddef>

namespace reel {

// A read-write anonymous region of at least `bytes`, 2 MiB-aligned, its length rounded up to
// 2 MiB (returned through `length`), advised MADV_HUGEPAGE where the system has it (advice only:
// the memory is right either way). Returns nullptr with errno set when the mapping fails.
void* map_huge_page_region(size_t bytes, size_t* length);

// Releases a region from map_huge_page_region (p and the length it returned).
void unmap_huge_page_region(void* p, size_t length);

}  // namespace reel
