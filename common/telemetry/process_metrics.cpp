#include "common/telemetry/process_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cxp::telemetry {
namespace {

prometheus::Gauge& gauge(prometheus::Registry& registry, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

// The fields of /proc/self/stat after the command name (field 3 is the first).
std::vector<std::string> stat_fields() {
  std::ifstream file("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(text.substr(close + 2));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

double boot_time_seconds() {
  std::ifstream file("/proc/stat");
  for (std::string line; std::getline(file, line);) {
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

}  // namespace

ProcessMetrics::ProcessMetrics(prometheus::Registry& registry)
    : cpu_(prometheus::BuildCounter()
               .Name("process_cpu_seconds_total")
               .Help("Total user and system CPU time spent in seconds.")
               .Register(registry)
               .Add({})),
      resident_(gauge(registry, "process_resident_memory_bytes", "Resident memory size in bytes.")),
      virtual_(gauge(registry, "process_virtual_memory_bytes", "Virtual memory size in bytes.")),
      open_fds_(gauge(registry, "process_open_fds", "Number of open file descriptors.")),
      max_fds_(gauge(registry, "process_max_fds", "Maximum number of open file descriptors.")),
      start_time_(gauge(registry, "process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.")) {
  update();
}

void ProcessMetrics::update() {
  const auto fields = stat_fields();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  // Fields after the name: state is [0], utime [11], stime [12], starttime [19], vsize [20], rss
  // [21].
  if (fields.size() > 21 && ticks > 0) {
    try {
      const double cpu = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
      if (cpu > cpu_.Value()) cpu_.Increment(cpu - cpu_.Value());
      start_time_.Set(boot_time_seconds() + std::stod(fields[19]) / ticks);
      virtual_.Set(std::stod(fields[20]));
      resident_.Set(std::stod(fields[21]) * page);
    } catch (const std::exception&) {
      // a field that is not a number: keep the last readings
    }
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  if (!ec) open_fds_.Set(static_cast<double>(fds));
  const long max = sysconf(_SC_OPEN_MAX);
  if (max > 0) max_fds_.Set(static_cast<double>(max));
}

}  // namespace cxp::telemetry
