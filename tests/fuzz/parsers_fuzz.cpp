// libFuzzer entry point for the parsers of remote input (fuzz_parsers.hpp).
// Built only with clang and -DSEALGATE_FUZZ=ON; run it on the seed corpus:
//   build-fuzz/tests/parsers_fuzz tests/fuzz/corpus -max_total_time=60
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_parsers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sealgate::fuzz::parse_counts counts;
  sealgate::fuzz::parse_everything(data, size, counts);
  return 0;
}
