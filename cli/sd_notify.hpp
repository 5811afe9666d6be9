// Telling systemd how the service is doing (sd_notify(3) protocol), for Type=notify.
#pragma once

#include <string_view>

namespace porthole::cli {

// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...") to $NOTIFY_SOCKET when systemd
// set it; does nothing otherwise. Failures are ignored, like sd_notify(3)'s callers do.
void sd_notify_state(std::string_view state);

}  // namespace porthole::cli
