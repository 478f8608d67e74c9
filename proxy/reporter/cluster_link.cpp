#include "proxy/reporter/cluster_link.h"

#include <boost/asio/post.hpp>

namespace cxp::proxy {

namespace {
kube::ClientOptions pod_client_options(const PodIdentity& pod) {
  kube::ClientOptions options;
  options.user_agent = "codex-proxy/" CXP_VERSION " (" + pod.pod_name + ")";
  options.request_timeout = std::chrono::seconds(10);
  options.qps = 5;  // a pod writes a few times per second at most
  options.burst = 10;
  return options;
}
}  // namespace

ClusterLink::ClusterLink(kube::KubeConfig config, PodIdentity pod, std::chrono::seconds heartbeat,
                         LiveSettings initial, boost::asio::io_context& io, OnSettings on_settings)
    : client_(std::move(config), pod_client_options(pod)),
      reporter_(client_, pod, heartbeat),
      watch_(client_, pod, initial,
             [&io, on_settings = std::move(on_settings)](const LiveSettings& settings) {
               boost::asio::post(io, [on_settings, settings] { on_settings(settings); });
             }) {}

ClusterLink::~ClusterLink() {
  stop(std::chrono::milliseconds(0));
}

void ClusterLink::start() {
  reporter_.start();
  watch_.start();
}

void ClusterLink::stop(std::chrono::milliseconds flush) {
  if (stopped_) return;
  stopped_ = true;
  const bool flushed = reporter_.stop(flush);
  client_.cancel();  // ends a write still in flight and the settings watch at once
  reporter_.join();
  watch_.stop();
  if (!flushed) log_.warn("final_status_not_written", {{"waited_ms", flush.count()}});
}

}  // namespace cxp::proxy
