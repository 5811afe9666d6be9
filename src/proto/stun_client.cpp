// STUN Binding client: transaction IDs and answer matching around the pure codec in
// codec/stun_codec; the retransmission schedule is proto/stun_transaction's.
#include "proto/stun_client.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "net/udp_socket.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {
namespace {

using std::chrono::milliseconds;

// RFC 8489 s6: the transaction ID "MUST be uniformly and randomly chosen" (96 bits);
// getrandom(2) is the kernel CSPRNG. An off-path attacker has to guess it to forge an
// answer.
Result<stun::TransactionId> fresh_transaction_id() {
  stun::TransactionId id{};
  std::size_t got = 0;
  while (got < id.size()) {
    ssize_t n = ::getrandom(id.data() + got, id.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::internal, fmt::format("getrandom: {}: cannot make a STUN "
                                                    "transaction ID",
                                                    std::strerror(errno)));
    }
    got += static_cast<std::size_t>(n);
  }
  return id;
}

milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

StunRetransmission retransmission_of(const StunClientOptions& options) {
  return {options.initial_rto, options.max_transmissions, options.last_wait_factor};
}

std::string change_text(const std::optional<stun::ChangeRequest>& change) {
  if (!change) return {};
  if (!change->change_ip && !change->change_port) return " CHANGE-REQUEST (none)";
  return fmt::format(" CHANGE-REQUEST{}{}", change->change_ip ? " ip" : "",
                     change->change_port ? " port" : "");
}

bool asks_change(const std::optional<stun::ChangeRequest>& change) {
  return change && (change->change_ip || change->change_port);
}

// One Binding transaction in flight.
struct Transaction {
  const StunBindingQuery* query = nullptr;
  std::optional<StunTransaction> tx;  // the schedule and the ID, once the query is valid
  Endpoint expected_from;             // where the answer must come from
  std::string label;                  // "192.0.2.1:3478 CHANGE-REQUEST ip port", for messages
  Deadline deadline{};
  std::string last_drop;    // why the last datagram from expected_from was dropped
  std::string misdirected;  // an answer with our ID that came from the wrong address
  std::optional<Result<StunBinding>> result;
  bool settled() const { return result.has_value(); }
};

}  // namespace

std::vector<milliseconds> stun_schedule(const StunClientOptions& options) {
  return retransmission_schedule(retransmission_of(options));
}

StunClient::StunClient(StunClientOptions options) : options_(std::move(options)) {}

void StunClient::debug(std::string_view text) const {
  if (options_.log) options_.log(LogLevel::debug, text);
}

Result<StunBinding> StunClient::binding(const StunBindingQuery& query, Deadline deadline) {
  auto socket = UdpSocket::open_unconnected();
  if (!socket) return socket.error();
  return binding(*socket, query, deadline);
}

Result<StunBinding> StunClient::binding(UdpSocket& socket, const StunBindingQuery& query,
                                        Deadline deadline) {
  auto results = bindings(socket, std::span(&query, 1), deadline);
  return std::move(results.front());
}

std::vector<Result<StunBinding>> StunClient::bindings(UdpSocket& socket,
                                                      std::span<const StunBindingQuery> queries,
                                                      Deadline deadline) {
  std::vector<Transaction> txs(queries.size());

  // Prepare every transaction; the ones with bad parameters settle at once.
  for (std::size_t i = 0; i < queries.size(); ++i) {
    Transaction& t = txs[i];
    const StunBindingQuery& q = queries[i];
    t.query = &q;
    t.label = q.server.to_string() + change_text(q.change_request);
    t.deadline = q.deadline ? std::min(*q.deadline, deadline) : deadline;
    if (!q.server.ip.is_v4() || q.server.port == 0) {
      t.result = make_error(Errc::usage, fmt::format("STUN server {}: not an IPv4 address "
                                                     "and port",
                                                     q.server.to_string()));
      continue;
    }
    t.expected_from = q.server;
    if (asks_change(q.change_request)) {
      // RFC 5780 s4.4: with change IP the answer comes from the other address's IP,
      // with change port from its port.
      if (!q.other_address || !q.other_address->ip.is_v4()) {
        t.result = make_error(Errc::usage, fmt::format("STUN {}: a CHANGE-REQUEST needs the "
                                                       "server's other IPv4 address "
                                                       "(OTHER-ADDRESS)",
                                                       t.label));
        continue;
      }
      if (q.change_request->change_ip) t.expected_from.ip = q.other_address->ip;
      if (q.change_request->change_port) t.expected_from.port = q.other_address->port;
    }
    auto id = fresh_transaction_id();
    if (!id) {
      t.result = id.error();
      continue;
    }
    // Two transactions of one batch sharing an ID would be a broken CSPRNG; refuse.
    for (std::size_t j = 0; j < i; ++j)
      if (txs[j].tx && txs[j].tx->id() == *id && !txs[j].settled())
        t.result = make_error(Errc::internal, "getrandom returned the same transaction ID twice");
    if (t.settled()) continue;
    t.tx.emplace(*id,
                 stun::encode_binding_request(
                     {*id, q.change_request, options_.software, options_.fingerprint}),
                 retransmission_of(options_), t.deadline);
  }

  auto settle_silence = [&](Transaction& t) {
    const int sent = t.tx->transmissions();
    const milliseconds waited = sent > 0 ? since(t.tx->first_sent()) : milliseconds{0};
    if (!t.last_drop.empty())
      t.result = make_error(Errc::timeout,
                            fmt::format("STUN server {} sent only datagrams that had to be "
                                        "dropped within {} ms ({} requests); last: {}",
                                        t.label, waited.count(), sent, t.last_drop));
    else
      t.result = make_error(Errc::no_service,
                            fmt::format("no STUN answer from {} within {} ms ({} requests){}",
                                        t.label, waited.count(), sent,
                                        t.misdirected.empty() ? "" : "; dropped " + t.misdirected));
  };

  for (;;) {
    // Transmit what is due, settle what has run out of time, find the next wake-up.
    auto now = Clock::now();
    std::optional<Clock::time_point> wake;
    for (Transaction& t : txs) {
      if (t.settled()) continue;
      StunTransaction& tx = *t.tx;
      const auto request = tx.due(now);
      if (tx.state() == StunTransaction::State::timed_out) {
        settle_silence(t);
        continue;
      }
      if (request) {
        // Every retransmission is the same datagram: the same transaction ID.
        if (auto sent = socket.send_to(*request, t.query->server); !sent) {
          tx.abandon();
          t.result = make_error(sent.error().code, fmt::format("STUN request to {}: {}", t.label,
                                                               sent.error().message));
          continue;
        }
        const int sent = tx.transmissions();
        debug(fmt::format("stun -> {} Binding request txid {}{}{}", t.query->server.to_string(),
                          stun::transaction_hex(tx.id()), change_text(t.query->change_request),
                          sent > 1 ? fmt::format(" (retransmission {})", sent - 1) : ""));
      }
      const auto next = tx.next_wakeup();
      if (next && (!wake || *next < *wake)) wake = *next;
    }
    if (!wake) break;  // all settled

    auto got = socket.receive(*wake, stun::kMaxDatagramSize);
    if (!got) {
      if (got.error().code == Errc::timeout) continue;
      for (Transaction& t : txs)
        if (!t.settled())
          t.result = make_error(got.error().code,
                                fmt::format("STUN {}: {}", t.label, got.error().message));
      break;
    }
    const Datagram& d = *got;
    const Endpoint& from = d.from;
    const auto from_text = from.to_string();
    auto expecting = [&](const Transaction& t) { return !t.settled() && t.expected_from == from; };
    // Worth decoding: datagrams from an address we wait for, or from a server we asked
    // (to tell the user when it answers a CHANGE-REQUEST from the wrong address).
    auto known = [&](const Transaction& t) {
      return expecting(t) || (!t.settled() && t.query->server == from);
    };
    if (std::none_of(txs.begin(), txs.end(), known)) {
      debug(fmt::format("stun <- {} dropped ({} bytes): not from a server we are waiting for",
                        from_text, d.bytes.size()));
      continue;
    }
    auto message = stun::decode(d.bytes);
    if (!message) {
      debug(fmt::format("stun <- {} dropped ({} bytes): {}", from_text, d.bytes.size(),
                        message.error().message));
      for (Transaction& t : txs)
        if (expecting(t)) t.last_drop = message.error().message;
      continue;
    }
    const stun::Message& m = *message;
    auto it = std::find_if(txs.begin(), txs.end(), [&](const Transaction& t) {
      return !t.settled() && t.tx->matches(m.transaction_id);
    });
    if (it == txs.end()) {
      // Stale answers to retransmissions of settled transactions land here too.
      debug(fmt::format("stun <- {} dropped: transaction ID {} is not in flight", from_text,
                        stun::transaction_hex(m.transaction_id)));
      continue;
    }
    Transaction& t = *it;
    // A server that cannot change its address answers a CHANGE-REQUEST with an error
    // from the address it was asked at: that one is accepted (and only that one).
    const bool error_from_server = m.message_class == stun::MessageClass::error_response &&
                                   from == t.query->server;
    if (from != t.expected_from && !error_from_server) {
      std::string why = fmt::format("the answer to {} came from {}, expected {}", t.label,
                                    from_text, t.expected_from.to_string());
      if (asks_change(t.query->change_request) && from == t.query->server)
        why += " (the server ignored CHANGE-REQUEST)";
      debug("stun <- dropped: " + why);
      t.misdirected = std::move(why);
      continue;
    }
    if ((m.message_class != stun::MessageClass::success_response &&
         m.message_class != stun::MessageClass::error_response) ||
        m.method != stun::method::binding) {
      t.last_drop = "not a Binding response: " + stun::describe(m);
      debug(fmt::format("stun <- {} dropped: {}", from_text, t.last_drop));
      continue;
    }
    debug(fmt::format("stun <- {} {}", from_text, stun::describe(m)));

    // From here on the transaction is answered, for better or worse (s6.3.3, s6.3.4).
    t.tx->answered(Clock::now());
    if (!m.unknown_required.empty()) {
      std::string names;
      for (std::uint16_t type : m.unknown_required)
        names += (names.empty() ? "" : ", ") + stun::attribute_name(type);
      t.result = make_error(Errc::internal,
                            fmt::format("STUN server {} answered with comprehension-required "
                                        "attributes porthole does not know ({})",
                                        from_text, names));
      continue;
    }
    if (m.message_class == stun::MessageClass::error_response) {
      if (!m.error_code) {
        t.result = make_error(Errc::internal, fmt::format("STUN server {} sent an error "
                                                          "response without ERROR-CODE",
                                                          from_text));
        continue;
      }
      std::string text = fmt::format("STUN server {} refused the Binding request{}: {} {}",
                                     from_text, change_text(t.query->change_request),
                                     m.error_code->code, m.error_code->reason);
      if (m.error_code->code == 420 && asks_change(t.query->change_request))
        text += " (it does not support RFC 5780 CHANGE-REQUEST)";
      t.result = make_error(Errc::refused, std::move(text), m.error_code->code);
      continue;
    }
    const Endpoint* mapped = m.mapped();
    if (mapped == nullptr) {
      t.result = make_error(Errc::internal,
                            fmt::format("STUN server {} answered without XOR-MAPPED-ADDRESS or "
                                        "MAPPED-ADDRESS",
                                        from_text));
      continue;
    }
    StunBinding b;
    b.mapped = *mapped;
    b.mapped_is_xor = m.xor_mapped_address.has_value();
    b.responder = from;
    if (const auto* origin = m.origin()) b.response_origin = *origin;
    if (const auto* other = m.other()) b.other_address = *other;
    b.software = m.software.value_or("");
    b.local_port = socket.local_port();
    b.transmissions = t.tx->transmissions();
    b.elapsed = std::chrono::duration_cast<milliseconds>(t.tx->elapsed());
    if (b.transmissions == 1) b.rtt = b.elapsed;
    t.result = std::move(b);
  }

  std::vector<Result<StunBinding>> out;
  out.reserve(txs.size());
  for (Transaction& t : txs) out.push_back(std::move(*t.result));
  return out;
}

}  // namespace porthole::detail
