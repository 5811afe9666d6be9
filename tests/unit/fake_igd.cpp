#include "fake_igd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>
#include "ip_literal.hpp"

using porthole::test::ip;

namespace porthole::test {
namespace {

using Clock = std::chrono::steady_clock;

// Bounds: a request larger or slower than this is porthole's bug, not worth waiting for.
constexpr std::size_t kMaxRequestBytes = 64 * 1024;
constexpr std::chrono::seconds kConnectionTimeout{5};
constexpr std::size_t kMaxRecordedRequests = 10000;

constexpr std::string_view kControlPath = "/ctl/IPConn";
constexpr std::string_view kDescriptionPath = "/rootDesc.xml";

[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(fmt::format("FakeIgd: {}: {}", what, std::strerror(errno)));
}

// A socket of `type` bound to 127.0.0.1 on an ephemeral port; returns fd and port.
std::pair<int, std::uint16_t> loopback_socket(int type) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    ::close(fd);
    fail("bind");
  }
  return {fd, ntohs(sa.sin_port)};
}

char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return to_lower(x) == to_lower(y);
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// The value of header `name` in an HTTP or SSDP header block ("" when absent).
std::string_view header(std::string_view block, std::string_view name) {
  while (!block.empty()) {
    std::size_t eol = block.find('\n');
    std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 1);
    std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && iequals(trim(line.substr(0, colon)), name))
      return trim(line.substr(colon + 1));
  }
  return {};
}

bool parse_port(std::string_view s, std::uint16_t& out) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

// The arguments of SOAP action `action` in `body`: the child elements of <u:action ...>,
// written by miniupnpc as <Name>value</Name> (flat, no attributes, no escaping).
std::map<std::string, std::string> soap_arguments(std::string_view body, std::string_view action) {
  std::map<std::string, std::string> args;
  std::size_t pos = body.find(fmt::format(":{}", action));  // <u:AddPortMapping xmlns:u=...>
  if (pos == std::string_view::npos) pos = body.find(fmt::format("<{}", action));
  if (pos == std::string_view::npos) return args;
  pos = body.find('>', pos);
  while (pos != std::string_view::npos) {
    std::size_t open = body.find('<', pos);
    if (open == std::string_view::npos || body.substr(open + 1, 1) == "/") break;
    std::size_t close = body.find('>', open);
    if (close == std::string_view::npos) break;
    std::string_view name = body.substr(open + 1, close - open - 1);
    if (!name.empty() && name.back() == '/') {  // <Name/>
      args[std::string(name.substr(0, name.size() - 1))] = "";
      pos = close + 1;
      continue;
    }
    std::size_t end = body.find(fmt::format("</{}>", name), close);
    if (end == std::string_view::npos) break;
    args[std::string(name)] = std::string(body.substr(close + 1, end - close - 1));
    pos = end + name.size() + 3;
  }
  return args;
}

const char* soap_error_name(int code) {
  switch (code) {
    case 401: return "Invalid Action";
    case 402: return "Invalid Args";
    case 501: return "Action Failed";
    case 606: return "Action not authorized";
    case 713: return "SpecifiedArrayIndexInvalid";
    case 714: return "NoSuchEntryInArray";
    case 718: return "ConflictInMappingEntry";
    case 725: return "OnlyPermanentLeasesSupported";
    case 728: return "NoPortMapsAvailable";
    default: return "Error";
  }
}

std::string http_response(std::string_view status, std::string_view body) {
  return fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
      "Connection: close\r\nServer: FakeIgd UPnP/1.1\r\n"
      "Content-Length: {}\r\n\r\n{}",
      status, body.size(), body);
}

constexpr std::string_view kEnvelopeOpen =
    "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/"
    "envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>";
constexpr std::string_view kEnvelopeClose = "</s:Body></s:Envelope>\r\n";

// A UPnP error as miniupnpd sends it (UDA 1.1 s3.2.2): HTTP 500 with a SOAP fault.
std::string soap_fault(int code) {
  return http_response(
      "500 Internal Server Error",
      fmt::format("{}<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError"
                  "</faultstring><detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\">"
                  "<errorCode>{}</errorCode><errorDescription>{}</errorDescription>"
                  "</UPnPError></detail></s:Fault>{}",
                  kEnvelopeOpen, code, soap_error_name(code), kEnvelopeClose));
}

std::string soap_success(std::string_view action, std::string_view service,
                         const std::vector<std::pair<std::string, std::string>>& out) {
  std::string values;
  for (const auto& [name, value] : out) values += fmt::format("<{0}>{1}</{0}>", name, value);
  return http_response("200 OK",
                       fmt::format("{}<u:{}Response xmlns:u=\"{}\">{}</u:{}Response>{}",
                                   kEnvelopeOpen, action, service, values, action, kEnvelopeClose));
}

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

std::string FakeIgd::Request::arg(const std::string& name) const {
  auto it = args.find(name);
  return it == args.end() ? std::string() : it->second;
}

FakeIgd::FakeIgd(Options options) : options_(std::move(options)), services_(options_.services) {
  std::tie(udp_fd_, ssdp_port_) = loopback_socket(SOCK_DGRAM);
  std::tie(listen_fd_, http_port_) = loopback_socket(SOCK_STREAM);
  if (::listen(listen_fd_, 8) != 0) fail("listen");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) fail("eventfd");
  thread_ = std::thread([this] { run(); });
}

FakeIgd::~FakeIgd() {
  std::uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof(one)) != sizeof(one)) std::terminate();  // cannot stop
  thread_.join();
  ::close(wake_fd_);
  ::close(listen_fd_);
  ::close(udp_fd_);
}

detail::GatewayInfo FakeIgd::gateway(LogFn log) const {
  detail::GatewayInfo gw;
  gw.gateway_ip = ip("127.0.0.1");
  gw.local_ip = ip("127.0.0.1");
  gw.ssdp_port = ssdp_port_;
  gw.log = std::move(log);
  return gw;
}

void FakeIgd::add_entry(Entry entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  table_.push_back(std::move(entry));
}

void FakeIgd::reserve_port(std::string protocol, std::uint16_t port) {
  std::lock_guard<std::mutex> lock(mutex_);
  reserved_.emplace(std::move(protocol), port);
}

void FakeIgd::fail_next_add(int code, int times) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int i = 0; i < times; ++i) add_faults_.push_back(code);
}

void FakeIgd::fail_add_with_lease(int code) {
  std::lock_guard<std::mutex> lock(mutex_);
  lease_fault_ = code;
}

void FakeIgd::fail_action(std::string action, int code) {
  std::lock_guard<std::mutex> lock(mutex_);
  action_faults_[std::move(action)] = code;
}

void FakeIgd::set_service(const std::string& control_path, bool connected,
                          std::string external_ip) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& s : services_)
    if (s.control_path == control_path) {
      s.connected = connected;
      s.external_ip = external_ip;
    }
}

void FakeIgd::misbehave(std::string request, Hostile how, std::string raw) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (how == Hostile::none)
    hostile_.erase(request);
  else
    hostile_[std::move(request)] = {how, std::move(raw)};
}

// Waits ms milliseconds; false when porthole hung up (EOF or error) or the fake stops.
bool FakeIgd::hostile_pause(int fd, int ms) {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) return true;
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return false;
    if (n <= 0) continue;
    if (fds[0].revents) return false;
    if (fds[1].revents) {
      char buf[512];
      ssize_t got = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (got <= 0 && !(got < 0 && (errno == EAGAIN || errno == EINTR))) return false;
    }
  }
}

// Sends without ever blocking the fake's thread; false when porthole hung up or stopped
// reading for 5 s, or the fake stops.
bool FakeIgd::hostile_send(int fd, std::string_view bytes) {
  const auto give_up = Clock::now() + kConnectionTimeout;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    if (Clock::now() >= give_up) return false;
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd, POLLOUT, 0}};
    if (::poll(fds, 2, 100) < 0 && errno != EINTR) return false;
    if (fds[0].revents || (fds[1].revents & (POLLERR | POLLHUP))) return false;
  }
  return true;
}

void FakeIgd::play_hostile(int fd, Hostile how, const std::string& raw) {
  const std::string chunked_head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n";
  switch (how) {
    case Hostile::none: return;
    case Hostile::drip: {
      const std::string answer = http_response("200 OK", "<?xml version=\"1.0\"?><root/>");
      for (char c : answer)
        if (!hostile_send(fd, std::string_view(&c, 1)) || !hostile_pause(fd, 1000)) return;
      return;
    }
    case Hostile::headers_never_end:
      if (!hostile_send(fd, "HTTP/1.1 200 OK\r\n")) return;
      while (hostile_send(fd, "X-Wait: a\r\n") && hostile_pause(fd, 100)) {
      }
      return;
    case Hostile::endless_chunks: {
      if (!hostile_send(fd, chunked_head)) return;
      const std::string chunk = "1000\r\n" + std::string(0x1000, 'a') + "\r\n";
      while (hostile_send(fd, chunk)) {
      }
      return;
    }
    case Hostile::chunk_0x80000000:
      if (!hostile_send(fd, chunked_head + "80000000\r\n")) return;
      while (hostile_send(fd, "a") && hostile_pause(fd, 100)) {
      }
      return;
    case Hostile::content_length_2e9:
      if (!hostile_send(fd,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                        "Content-Length: 2000000000\r\n\r\n<"))
        return;
      while (hostile_send(fd, "a") && hostile_pause(fd, 100)) {
      }
      return;
    case Hostile::raw: hostile_send(fd, raw); return;
  }
}

std::vector<FakeIgd::Request> FakeIgd::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

std::vector<FakeIgd::Request> FakeIgd::requests(std::string_view action) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Request> out;
  for (const auto& r : requests_)
    if (r.action == action) out.push_back(r);
  return out;
}

std::vector<FakeIgd::Entry> FakeIgd::table() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return table_;
}

std::size_t FakeIgd::msearch_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return msearches_;
}

void FakeIgd::run() {
  for (;;) {
    pollfd fds[3] = {{wake_fd_, POLLIN, 0}, {udp_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;  // stop
    if (fds[1].revents & POLLIN) {
      char buf[2048];
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      ssize_t n = ::recvfrom(udp_fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from),
                             &len);
      if (n > 0) answer_msearch(std::string_view(buf, static_cast<std::size_t>(n)), from);
    }
    if (fds[2].revents & POLLIN) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        serve_connection(fd);
        ::close(fd);
      }
    }
  }
}

// Answers an M-SEARCH for a type this device has (UDA 1.1 s1.3.3: with the type asked).
// The socket is bound to 127.0.0.1, so the sender, and our answer, are on loopback.
void FakeIgd::answer_msearch(std::string_view text, const sockaddr_in& from) {
  if (text.substr(0, 9) != "M-SEARCH ") return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++msearches_;
  }
  const int lowest = options_.answers_earlier_versions ? 1 : options_.igd_version;
  auto has = [&](std::string_view st, std::string_view type) {
    for (int v = lowest; v <= options_.igd_version; ++v)
      if (st == fmt::format("{}{}", type, v)) return true;
    return false;
  };
  const std::string device = fmt::format("urn:schemas-upnp-org:device:InternetGatewayDevice:{}",
                                         options_.igd_version);
  std::string st(header(text, "ST"));
  if (st == "ssdp:all" || st == "upnp:rootdevice") st = device;
  if (!has(st, "urn:schemas-upnp-org:device:InternetGatewayDevice:") &&
      !(options_.wan_service && has(st, "urn:schemas-upnp-org:service:WANIPConnection:")))
    return;
  std::string reply = fmt::format(
      "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: {0}\r\n"
      "USN: uuid:fa4e0000-0000-4000-8000-000000000001::{0}\r\nEXT:\r\n"
      "SERVER: FakeIgd/1 UPnP/1.1 porthole-test/1\r\n"
      "LOCATION: http://127.0.0.1:{1}{2}\r\n\r\n",
      st, http_port_, kDescriptionPath);
  ::sendto(udp_fd_, reply.data(), reply.size(), 0, reinterpret_cast<const sockaddr*>(&from),
           sizeof(from));
}

// One HTTP exchange per connection ("Connection: close", as miniupnpc and http_get send).
void FakeIgd::serve_connection(int fd) {
  const auto deadline = Clock::now() + kConnectionTimeout;
  std::string in;
  std::size_t header_end = std::string::npos;
  std::size_t content_length = 0;
  for (;;) {
    if (header_end == std::string::npos) {
      header_end = in.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        auto cl = header(std::string_view(in).substr(0, header_end), "Content-Length");
        std::from_chars(cl.data(), cl.data() + cl.size(), content_length);
        if (content_length > kMaxRequestBytes) return;
      }
    }
    if (header_end != std::string::npos && in.size() >= header_end + 4 + content_length) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || in.size() > kMaxRequestBytes ||
        ::poll(&p, 1, static_cast<int>(left.count())) != 1)
      return;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    in.append(buf, static_cast<std::size_t>(n));
  }
  std::string_view head = std::string_view(in).substr(0, header_end);
  std::string_view request_line = head.substr(0, head.find("\r\n"));
  std::size_t sp1 = request_line.find(' ');
  std::size_t sp2 = request_line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return;
  // A hostile answer for this request? ("GET", or the action after '#' in SOAPAction.)
  std::string key(request_line.substr(0, sp1));
  if (key != "GET") {
    std::string_view action = header(head, "SOAPAction");
    std::size_t hash = action.find('#');
    if (hash != std::string_view::npos) key = std::string(action.substr(hash + 1));
    if (!key.empty() && key.back() == '"') key.pop_back();
  }
  std::pair<Hostile, std::string> hostile{Hostile::none, {}};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = hostile_.find(key); it != hostile_.end()) hostile = it->second;
  }
  std::string reply = handle_http(request_line.substr(0, sp1),
                                  request_line.substr(sp1 + 1, sp2 - sp1 - 1),
                                  header(head, "SOAPAction"),
                                  std::string_view(in).substr(header_end + 4, content_length));
  if (hostile.first != Hostile::none) return play_hostile(fd, hostile.first, hostile.second);
  send_all(fd, reply);
}

std::string FakeIgd::handle_http(std::string_view method, std::string_view path,
                                 std::string_view soap_action, std::string_view body) {
  if (method == "GET") {
    std::lock_guard<std::mutex> lock(mutex_);
    if (requests_.size() < kMaxRecordedRequests)
      requests_.push_back({"GET", {{"path", std::string(path)}}, {}});
    return path == kDescriptionPath
               ? http_response("200 OK", options_.description.empty() ? description_xml()
                                                                      : options_.description)
               : http_response("404 Not Found", "");
  }
  if (method != "POST") {  // SUBSCRIBE, ...: recorded, so tests can say none came
    std::lock_guard<std::mutex> lock(mutex_);
    if (requests_.size() < kMaxRecordedRequests)
      requests_.push_back({std::string(method), {{"path", std::string(path)}}, {}});
    return http_response("405 Method Not Allowed", "");
  }
  Options::Service builtin;
  builtin.type = fmt::format("urn:schemas-upnp-org:service:WANIPConnection:{}",
                             options_.igd_version);
  builtin.control_path = kControlPath;
  builtin.external_ip = options_.external_ip;
  std::optional<Options::Service> service;
  if (options_.services.empty() && options_.wan_service && path == kControlPath) service = builtin;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& s : services_)
      if (path == s.control_path) service = s;
  }
  if (!service) return http_response("404 Not Found", "");
  // SOAPAction: "urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"
  if (soap_action.size() >= 2 && soap_action.front() == '"' && soap_action.back() == '"')
    soap_action = soap_action.substr(1, soap_action.size() - 2);
  std::size_t hash = soap_action.find('#');
  // The action must be in the namespace of the service at this control URL.
  if (hash == std::string_view::npos || soap_action.substr(0, hash) != service->type)
    return soap_fault(401);
  std::string action(soap_action.substr(hash + 1));
  auto args = soap_arguments(body, action);
  std::lock_guard<std::mutex> lock(mutex_);
  if (requests_.size() < kMaxRecordedRequests)
    requests_.push_back({action, args, std::string(path)});
  return handle_soap(action, args, *service);
}

// The WANIPConnection actions, roughly as miniupnpd implements them. Called locked.
std::string FakeIgd::handle_soap(const std::string& action,
                                 const std::map<std::string, std::string>& args,
                                 const Options::Service& wan) {
  const std::string& service = wan.type;
  const bool v2 = service.size() > 2 && service.compare(service.size() - 2, 2, ":2") == 0;
  auto arg = [&](const char* name) {
    auto it = args.find(name);
    return it == args.end() ? std::string() : it->second;
  };
  auto row = [](const Entry& e) {
    return std::vector<std::pair<std::string, std::string>>{
        {"NewInternalPort", std::to_string(e.internal_port)},
        {"NewInternalClient", e.internal_client},
        {"NewEnabled", "1"},
        {"NewPortMappingDescription", e.description},
        {"NewLeaseDuration", std::to_string(e.lease)}};
  };

  if (auto it = action_faults_.find(action); it != action_faults_.end() && it->second != 0)
    return soap_fault(it->second);
  if (action == "GetExternalIPAddress")
    return soap_success(action, service, {{"NewExternalIPAddress", wan.external_ip}});
  if (action == "GetStatusInfo")
    return soap_success(action, service,
                        {{"NewConnectionStatus", wan.connected ? "Connected" : "Disconnected"},
                         {"NewLastConnectionError",
                          wan.connected ? "ERROR_NONE" : "ERROR_NO_CARRIER"},
                         {"NewUptime", wan.connected ? "3600" : "0"}});
  if (!wan.connected) return soap_fault(501);  // ActionFailed: the connection is down

  const std::string protocol = arg("NewProtocol");
  std::uint16_t external_port = 0;
  const bool port_ok = parse_port(arg("NewExternalPort"), external_port);
  // Some routers refuse lower-case protocol names ("tcp"; the IGD specification writes
  // NewProtocol as "TCP" or "UDP").
  const bool protocol_ok = protocol == "TCP" || protocol == "UDP";

  if (action == "GetSpecificPortMappingEntry") {
    if (!port_ok || !protocol_ok) return soap_fault(402);
    auto it = find_entry(protocol, external_port);
    if (it == table_.end()) return soap_fault(714);
    return soap_success(action, service, row(*it));
  }
  if (action == "GetGenericPortMappingEntry") {
    std::size_t index = 0;
    std::string text = arg("NewPortMappingIndex");
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
    if (ec != std::errc() || p != text.data() + text.size()) return soap_fault(402);
    if (index >= table_.size()) return soap_fault(options_.end_of_table_code);
    const Entry& e = table_[index];
    auto out = row(e);
    out.insert(out.begin(), {{"NewRemoteHost", ""},
                             {"NewExternalPort", std::to_string(e.external_port)},
                             {"NewProtocol", e.protocol}});
    return soap_success(action, service, out);
  }
  if (action == "GetListOfPortMappings" && v2) {
    // As miniupnpd 2.3.1 writes it: the PortMappingList in a CDATA section, the rows of
    // one protocol in [NewStartPort, NewEndPort], at most NewNumberOfPorts of them.
    std::uint16_t start = 0, end = 0, number = 0;
    if (!protocol_ok || !parse_port(arg("NewStartPort"), start) ||
        !parse_port(arg("NewEndPort"), end) || !parse_port(arg("NewNumberOfPorts"), number))
      return soap_fault(402);
    if (start > end) return soap_fault(733);  // InconsistentParameters
    std::string rows;
    std::size_t n = 0;
    for (const Entry& e : table_) {
      if (e.protocol != protocol || e.external_port < start || e.external_port > end) continue;
      if (number != 0 && n++ == number) break;
      rows += fmt::format(
          "<p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteHost><p:NewExternalPort>{}"
          "</p:NewExternalPort><p:NewProtocol>{}</p:NewProtocol><p:NewInternalPort>{}"
          "</p:NewInternalPort><p:NewInternalClient>{}</p:NewInternalClient><p:NewEnabled>1"
          "</p:NewEnabled><p:NewDescription>{}</p:NewDescription><p:NewLeaseTime>{}"
          "</p:NewLeaseTime></p:PortMappingEntry>",
          e.external_port, e.protocol, e.internal_port, e.internal_client, e.description, e.lease);
    }
    return soap_success(
        action, service,
        {{"NewPortListing",
          "<![CDATA[<p:PortMappingList xmlns:p=\"urn:schemas-upnp-org:gw:WANIPConnection\">" +
              rows + "</p:PortMappingList>]]>"}});
  }
  if (action == "DeletePortMapping") {
    if (!port_ok || !protocol_ok) return soap_fault(402);
    auto it = find_entry(protocol, external_port);
    if (it == table_.end()) return soap_fault(714);
    table_.erase(it);
    return soap_success(action, service, {});
  }
  if (action == "AddPortMapping" || (action == "AddAnyPortMapping" && v2)) {
    Entry e;
    e.protocol = protocol;
    e.internal_client = arg("NewInternalClient");
    e.description = arg("NewPortMappingDescription");
    std::string lease = arg("NewLeaseDuration");
    auto [p, ec] = std::from_chars(lease.data(), lease.data() + lease.size(), e.lease);
    if (!port_ok || !protocol_ok || !parse_port(arg("NewInternalPort"), e.internal_port) ||
        e.internal_client.empty() || ec != std::errc() || p != lease.data() + lease.size())
      return soap_fault(402);
    // Scripted refusals come first: they are what the test is about.
    if (!add_faults_.empty()) {
      int code = add_faults_.front();
      add_faults_.pop_front();
      return soap_fault(code);
    }
    if (lease_fault_ != 0 && e.lease != 0) return soap_fault(lease_fault_);
    if (options_.max_lease != 0 && (e.lease == 0 || e.lease > options_.max_lease))
      e.lease = options_.max_lease;
    // Held by another host, or kept by the router: the conflict this router reports.
    auto taken = [&](std::uint16_t port) {
      auto it = find_entry(protocol, port);
      return is_reserved(protocol, port) ||
             (it != table_.end() && it->internal_client != e.internal_client);
    };
    if (action == "AddAnyPortMapping") {
      // IGDv2: the wanted port if free, else the next free one above it.
      std::uint32_t port = external_port;
      while (port <= 65535 && taken(static_cast<std::uint16_t>(port))) ++port;
      if (port > 65535) return soap_fault(728);  // NoPortMapsAvailable
      external_port = static_cast<std::uint16_t>(port);
    } else if (taken(external_port)) {
      return soap_fault(options_.conflict_code);
    }
    e.external_port = external_port;
    // The same client re-adding replaces its entry (miniupnpd does; IGDv2 requires it).
    if (auto it = find_entry(protocol, external_port); it != table_.end())
      *it = e;
    else
      table_.push_back(e);
    if (action == "AddAnyPortMapping")
      return soap_success(action, service, {{"NewReservedPort", std::to_string(external_port)}});
    return soap_success(action, service, {});
  }
  return soap_fault(401);  // Invalid Action (AddAnyPortMapping on IGDv1, anything else)
}

bool FakeIgd::is_reserved(const std::string& protocol, std::uint16_t port) const {
  return reserved_.count({protocol, port}) != 0;
}

std::vector<FakeIgd::Entry>::iterator FakeIgd::find_entry(const std::string& protocol,
                                                          std::uint16_t port) {
  return std::find_if(table_.begin(), table_.end(), [&](const Entry& e) {
    return e.protocol == protocol && e.external_port == port;
  });
}

// miniupnpd's description, trimmed to the devices and services that matter. Without
// wan_service, the WANConnectionDevice offers nothing a client can map ports with.
std::string FakeIgd::description_xml() const {
  const int v = options_.igd_version;
  const std::string wan_service =
      options_.wan_service
          ? fmt::format(
                "<serviceList><service><serviceType>urn:schemas-upnp-org:service:"
                "WANIPConnection:{}</serviceType><serviceId>urn:upnp-org:serviceId:"
                "WANIPConn1</serviceId><SCPDURL>/WANIPCn.xml</SCPDURL><controlURL>{}"
                "</controlURL><eventSubURL>/evt/IPConn</eventSubURL></service>"
                "</serviceList>",
                v, kControlPath)
          : std::string();
  return fmt::format(
      "<?xml version=\"1.0\"?>\r\n"
      "<root xmlns=\"urn:schemas-upnp-org:device-1-0\">"
      "<specVersion><major>1</major><minor>1</minor></specVersion>"
      "<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:{0}</deviceType>"
      "<friendlyName>FakeIgd</friendlyName>"
      "<UDN>uuid:fa4e0000-0000-4000-8000-000000000001</UDN>"
      "<serviceList><service>"
      "<serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>"
      "<serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId>"
      "<SCPDURL>/L3F.xml</SCPDURL><controlURL>/ctl/L3F</controlURL>"
      "<eventSubURL>/evt/L3F</eventSubURL></service></serviceList>"
      "<deviceList><device>"
      "<deviceType>urn:schemas-upnp-org:device:WANDevice:{0}</deviceType>"
      "<serviceList><service>"
      "<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>"
      "<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>"
      "<SCPDURL>/WANCfg.xml</SCPDURL><controlURL>/ctl/CmnIfCfg</controlURL>"
      "<eventSubURL>/evt/CmnIfCfg</eventSubURL></service></serviceList>"
      "<deviceList><device>"
      "<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:{0}</deviceType>{1}"
      "</device></deviceList></device></deviceList></device></root>\r\n",
      v, wan_service);
}

detail::MapParams loopback_map_request(std::uint16_t port) {
  detail::MapParams p;
  p.transport = Transport::tcp;
  p.internal_ip = ip("127.0.0.1");
  p.internal_port = port;
  p.lifetime = 3600;
  p.description = "porthole test";
  return p;
}

Options fake_igd_options(const FakeIgd& igd, const std::string& state_dir) {
  Options options;
  options.gateway = ip("127.0.0.1");
  options.ssdp_port = igd.ssdp_port();
  options.state_dir = state_dir;
  return options;
}

OpenRequest tcp_via_upnp(std::uint16_t port) {
  OpenRequest request;
  request.port = PortSpec{port, Transport::tcp};
  request.via = Via::upnp;
  return request;
}

std::string fresh_test_dir() {
  char tmpl[] = "/tmp/porthole-fake-igd-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace porthole::test
