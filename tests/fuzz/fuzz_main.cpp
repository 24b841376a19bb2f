// The libFuzzer entry point of every fuzz target: tests/CMakeLists.txt builds
// this file once per target with SEALGATE_FUZZ_FEED naming its feed
// (fuzz_parsers.hpp). Clang only; scripts/fuzz.sh runs them all.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_parsers.hpp"

#ifndef SEALGATE_FUZZ_FEED
#error "SEALGATE_FUZZ_FEED must name a feed, e.g. feed_dns"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sealgate::fuzz::parse_counts counts;
  sealgate::fuzz::SEALGATE_FUZZ_FEED(data, size, counts);
  return 0;
}
