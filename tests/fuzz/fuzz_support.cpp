// What every feed shares: the invariant check that stops the run, and the
// scratch directory the file-only loaders read their input from. Never
// writes anywhere but that directory.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {
namespace {

std::filesystem::path scratch_dir;

void remove_scratch() {
  std::error_code ec;
  if (!scratch_dir.empty()) std::filesystem::remove_all(scratch_dir, ec);
}

}  // namespace

void invariant_failed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
  std::abort();
}

std::string write_scratch(std::string_view name, std::string_view bytes) {
  if (scratch_dir.empty()) {
    // tmpfs: thousands of rewrites a second must not wear a disk or wait on it.
    std::error_code ec;
    std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    std::string tmpl = (base / "sealgate-fuzz-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
      std::perror("fuzz: mkdtemp");
      std::abort();
    }
    scratch_dir = tmpl;
    std::atexit(remove_scratch);
  }
  auto path = scratch_dir / std::string(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path.string();
}

}  // namespace sealgate::fuzz
