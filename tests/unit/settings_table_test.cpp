#include "common/settings_table.h"

#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "common/config_value.h"
#include "controller/codexproxy_spec.h"
#include "proxy/proxy_config.h"
#include "proxy/reporter/pod_report.h"

using cxp::settings::IntSetting;
using cxp::settings::kIntSettings;

namespace {

YAML::Node spec_schema(const std::string& crd_path) {
  const auto crd = YAML::LoadFile(crd_path);
  return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
}

std::vector<std::string> segments(std::string_view field) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= field.size()) {
    const auto dot = std::min(field.find('.', start), field.size());
    out.emplace_back(field.substr(start, dot - start));
    start = dot + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("both CRD copies state each setting's default and bounds as the settings table does") {
  for (const std::string path :
       {"crds/codexproxies.codexproxy.io.yaml",
        "charts/codexproxy-operator/files/codexproxies.codexproxy.io.yaml"}) {
    const auto spec = spec_schema(CXP_SOURCE_DIR "/" + path);
    for (const auto* setting : kIntSettings) {
      CAPTURE(path);
      CAPTURE(setting->field);
      YAML::Node node;
      node.reset(spec);
      for (const auto& segment : segments(setting->field)) {
        // a parent object's own default, when it spells the child out, must agree too
        if (node["default"] && node["default"].IsMap() && node["default"][segment]) {
          CHECK(node["default"][segment].as<std::int64_t>() == setting->default_value);
        }
        node.reset(node["properties"][segment]);  // reset: operator= would write into the tree
        REQUIRE(node.IsDefined());
      }
      CHECK(node["type"].as<std::string>() == "integer");
      CHECK(node["minimum"].as<std::int64_t>() == setting->min);
      CHECK(node["maximum"].as<std::int64_t>() == setting->max);
      CHECK(node["default"].as<std::int64_t>() == setting->default_value);
    }
  }
}

TEST_CASE("every value the CRD admits starts a pod: the variables accept the CRD's whole range") {
  for (const auto* setting : kIntSettings) {
    if (setting->env.empty()) continue;
    CAPTURE(setting->env);
    const cxp::proxy::SettingSpec* spec = nullptr;
    for (const auto& candidate : cxp::proxy::proxy_settings()) {
      if (candidate.env == setting->env) spec = &candidate;
    }
    REQUIRE(spec != nullptr);
    for (const auto value : {setting->min, setting->default_value, setting->max}) {
      cxp::proxy::ProxyConfig config;
      CHECK_NOTHROW(spec->apply(config, setting->env, std::to_string(value * setting->env_factor)));
    }
  }
}

TEST_CASE("the pods' ConfigMap parser takes exactly the CRD's range of each live setting") {
  for (const auto* setting : kIntSettings) {
    if (!setting->live) continue;
    CAPTURE(setting->field);
    const std::string key(setting->field);
    const auto problems_for = [&](std::int64_t value) {
      std::vector<std::string> problems;
      cxp::proxy::parse_live_settings({{key, std::to_string(value)}}, {}, problems);
      return problems.size();
    };
    CHECK(problems_for(setting->min) == 0);
    CHECK(problems_for(setting->max) == 0);
    CHECK(problems_for(setting->min - 1) == 1);
    CHECK(problems_for(setting->max + 1) == 1);
  }
  // the defaults of a pod that has read no ConfigMap yet are the table's
  const cxp::proxy::LiveSettings fresh;
  CHECK(fresh.retry_after_s == cxp::settings::kRetryAfterSeconds.default_value);
  CHECK(fresh.trace_ttl_s == cxp::settings::kTraceTtlSeconds.default_value);
  CHECK(fresh.trace_max_files == cxp::settings::kTraceMaxFiles.default_value);
}

TEST_CASE("the controller's and the proxy's defaults are the table's, in each one's unit") {
  const cxp::controller::CodexProxySpec spec;
  const cxp::proxy::ProxyConfig config;
  CHECK(spec.max_concurrency == config.worker_max_concurrency);
  CHECK(spec.request_timeout_seconds * 1000 == config.worker_request_timeout.count());
  CHECK(spec.backoff_initial_ms == config.worker_backoff_initial.count());
  CHECK(spec.backoff_max_ms == config.worker_backoff_max.count());
  CHECK(spec.drain_seconds * 1000 == config.worker_shutdown_grace.count());
  CHECK(spec.max_turns == static_cast<std::int64_t>(config.worker_max_turns));
  CHECK(spec.max_rss_mb == static_cast<std::int64_t>(config.worker_max_rss_mb));
  CHECK(spec.maintenance_retry_after_seconds == config.maintenance_retry_after_s);
  CHECK(spec.trace_ttl_seconds == config.trace_ttl.count());
  CHECK(spec.trace_max_files == static_cast<std::int64_t>(config.trace_max_files));
}
