#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace cxp {

// Writes `content` to `target` readable by its owner only (mode 0600): first into `temporary`
// (same directory), then renamed, so that a reader never sees half a file. `durable` adds an
// fsync before the rename. Returns nullopt on success, else what failed (strerror); the temporary
// file is removed on failure.
std::optional<std::string> write_private_file(const std::filesystem::path& target,
                                              const std::filesystem::path& temporary,
                                              std::string_view content, bool durable);

}  // namespace cxp
