// The loaders of config.cpp's intake sections (intake_config.cpp); private to
// gateway/config.
#pragma once
#include <yaml-cpp/yaml.h>

#include "common/yaml_reader.hpp"
#include "gateway/config/config.hpp"

namespace sealgate::gateway {

void load_relay_classes(yaml_reader& r, const YAML::Node& relay, config& c);
void load_loop(yaml_reader& r, const YAML::Node& loop, config& c);
void load_dkim(yaml_reader& r, const YAML::Node& dkim, config& c);

}  // namespace sealgate::gateway
