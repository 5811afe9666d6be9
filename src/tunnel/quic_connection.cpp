// The QUIC adapter (src/tunnel/quic_connection.hpp): the one file that includes ngtcp2's
// headers. ngtcp2 0.12.1 does QUIC (RFC 9000), its loss recovery and congestion control
// (RFC 9002) and, through ngtcp2_crypto_gnutls, the packet protection of RFC 9001; GnuTLS
// does the TLS 1.3 handshake. What is ours: the pinned certificates (tls_pinned.cpp), the
// stream send buffers ngtcp2 needs kept until acknowledged, flow-control credit as the
// application consumes, and turning ngtcp2's callbacks and error codes into QuicEvents.
#include "tunnel/quic_connection.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <sys/socket.h>

#include <fmt/format.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "tunnel/tls_pinned.hpp"

namespace porthole::detail {
namespace {

// Bytes a stream may hold unacknowledged (sent or not) before write_stream() takes fewer:
// enough for the bandwidth-delay product of a fast path, bounded per stream.
constexpr std::uint64_t kStreamSendLimit = 4u << 20;
// The size of a new piece of a stream's send buffer (a TCP read's worth).
constexpr std::size_t kSendChunk = std::size_t{64} * 1024;
// Flow-control windows we grant (RFC 9000 s4): per stream and per connection, and how
// far ngtcp2's window auto-tuning may grow them.
constexpr std::uint64_t kStreamWindow = 1u << 20;
constexpr std::uint64_t kConnectionWindow = 8u << 20;
constexpr std::uint64_t kMaxStreamWindow = 16u << 20;
constexpr std::uint64_t kMaxConnectionWindow = 64u << 20;
constexpr std::uint64_t kMaxStreams = 1024;  // concurrent, each direction
// Ack-eliciting packets received before an ACK is sent at once (RFC 9000 s13.2.2 suggests
// 2; s13.2.1 leaves the frequency to the receiver). Fewer ACKs cost both sides less per
// byte of a bulk transfer; fewer packets than this are acknowledged within max_ack_delay
// (s13.2.1), or with the next packet we send anyway.
constexpr std::size_t kAckThreshold = 8;
// RFC 9221 s3: the largest DATAGRAM frame we take.
constexpr std::uint64_t kMaxDatagramFrame = 65535;
// What a stream-data event reserves when it starts: a burst of packets between pumps.
constexpr std::size_t kStreamDataReserve = std::size_t{32} * 1024;
// Datagrams waiting for send; beyond this the oldest are dropped (they are unreliable).
constexpr std::size_t kMaxQueuedDatagrams = 4096;
constexpr std::size_t kCidLength = 16;
// TLS alerts (RFC 8446 s6.2) that mean "your certificate is not acceptable".
constexpr std::uint8_t kAlertBadCertificate = 42;
constexpr std::uint8_t kAlertCertificateRequired = 116;

ngtcp2_tstamp to_ts(TimePoint t) {
  if (t == TimePoint::max()) return UINT64_MAX;
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return ns < 0 ? 0 : static_cast<ngtcp2_tstamp>(ns);
}

TimePoint from_ts(ngtcp2_tstamp ts) {
  if (ts == UINT64_MAX) return TimePoint::max();
  return TimePoint(std::chrono::duration_cast<Clock::duration>(
      std::chrono::nanoseconds(static_cast<std::int64_t>(ts))));
}

ngtcp2_duration to_duration(std::chrono::milliseconds d) {
  return d.count() <= 0 ? 0 : static_cast<ngtcp2_duration>(d.count()) * NGTCP2_MILLISECONDS;
}

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;
  explicit SockAddr(const Endpoint& e) { length = static_cast<socklen_t>(e.to_sockaddr(storage)); }
  SockAddr() = default;
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

// One piece of a stream's outgoing bytes: filled from the front (by a copy, or in place
// by the caller's read), never moved while it lives.
struct SendChunk {
  std::unique_ptr<std::uint8_t[]> data;
  std::size_t size = 0;
  std::size_t capacity = 0;
};

// A stream's outgoing bytes, from the first one not yet acknowledged to the last one
// written. ngtcp2 keeps pointers into them until they are acknowledged
// (acked_stream_data_offset), so a chunk is never moved or freed before that.
struct SendStream {
  std::deque<SendChunk> chunks;
  std::uint64_t base = 0;       // stream offset of chunks.front()[0]
  std::uint64_t end = 0;        // stream offset after the last byte written
  std::uint64_t sent = 0;       // bytes handed to ngtcp2
  std::size_t send_index = 0;   // the chunk holding offset `sent`
  std::size_t send_offset = 0;  // ... and where in it
  bool fin = false;             // the application has ended the stream
  bool fin_sent = false;
  bool want_writable = false;  // write_stream() took fewer bytes than offered

  bool has_pending() const { return sent < end || (fin && !fin_sent); }
  std::uint64_t buffered() const { return end - base; }
  std::uint64_t room() const {
    return buffered() < kStreamSendLimit ? kStreamSendLimit - buffered() : 0;
  }

  // Space for up to `max` bytes after the last one written: the free end of the last
  // chunk when there is one, else a new chunk (not zeroed: the caller fills it).
  std::span<std::uint8_t> space(std::size_t max) {
    if (!chunks.empty() && chunks.back().size < chunks.back().capacity) {
      // A last chunk sent to its end: the send position moves back onto it, so what is
      // appended there is sent too (the same stream offset, named by the earlier chunk).
      if (send_index == chunks.size()) {
        send_index = chunks.size() - 1;
        send_offset = chunks.back().size;
      }
      SendChunk& c = chunks.back();
      return {c.data.get() + c.size, std::min(max, c.capacity - c.size)};
    }
    std::size_t capacity = std::max(max, kSendChunk);
    chunks.push_back(
        SendChunk{std::unique_ptr<std::uint8_t[]>(new std::uint8_t[capacity]), 0, capacity});
    return {chunks.back().data.get(), max};
  }
  void commit(std::size_t n) {
    SendChunk& c = chunks.back();
    n = std::min(n, c.capacity - c.size);
    c.size += n;
    end += n;
  }
};

}  // namespace

struct QuicConnection::State {
  QuicConfig config;
  ngtcp2_crypto_conn_ref conn_ref{};
  ngtcp2_conn* conn = nullptr;
  TlsPinned tls;
  SockAddr local_sa, remote_sa;
  Endpoint local, remote;
  std::map<std::int64_t, SendStream> streams;
  std::int64_t round_robin = -1;  // the stream written last
  std::deque<std::vector<std::uint8_t>> datagrams;
  std::deque<QuicEvent> events;
  // Events before the peer is authenticated: released at HandshakeDone, dropped when it
  // is refused, so nothing of an unauthenticated peer reaches the application.
  std::deque<QuicEvent> held;
  std::optional<PeerId> peer;  // set by the certificate check
  bool confirmed = false;      // ngtcp2's handshake_confirmed
  bool established = false;
  bool closed = false;
  bool closed_reported = false;
  bool write_again = false;  // write_packets() stopped at the send quantum unpaced
  std::vector<std::uint8_t> close_packet;
  TimePoint last_now{};

  ~State() {
    if (conn) ngtcp2_conn_del(conn);
  }

  void push_event(QuicEvent::Value v) {
    if (established)
      events.push_back(QuicEvent{std::move(v)});
    else if (!closed)
      held.push_back(QuicEvent{std::move(v)});
  }

  // Stream data in order: appended to the newest event when that is data of the same
  // stream not yet taken, so a burst of packets is one event and one buffer, not one
  // allocation per packet.
  void push_stream_data(std::int64_t id, std::span<const std::uint8_t> bytes, bool fin) {
    std::deque<QuicEvent>& queue = established ? events : held;
    if (closed && !established) return;
    if (!queue.empty())
      if (auto* last = std::get_if<QuicEvent::StreamData>(&queue.back().value);
          last && last->id == id && !last->fin) {
        last->bytes.insert(last->bytes.end(), bytes.begin(), bytes.end());
        last->fin = fin;
        return;
      }
    // Room for a burst at once: growing by doubling would copy the bytes again.
    QuicEvent::StreamData data{id, {}, fin};
    data.bytes.reserve(std::max(bytes.size(), kStreamDataReserve));
    data.bytes.assign(bytes.begin(), bytes.end());
    queue.push_back(QuicEvent{std::move(data)});
  }

  void report_closed(Error error, bool by_peer, std::uint64_t app_code) {
    closed = true;
    held.clear();
    if (closed_reported) return;
    closed_reported = true;
    events.push_back(QuicEvent{QuicEvent::Closed{std::move(error), by_peer, app_code}});
  }

  // Ends the connection from our side: one CONNECTION_CLOSE packet (RFC 9000 s10.2)
  // queued for write_packets(), then a Closed event.
  void close_with(const ngtcp2_connection_close_error& ccerr, Error error, std::uint64_t app_code) {
    if (closed) return;
    if (conn && !ngtcp2_conn_is_in_closing_period(conn) &&
        !ngtcp2_conn_is_in_draining_period(conn)) {
      std::vector<std::uint8_t> buf(NGTCP2_MAX_UDP_PAYLOAD_SIZE * 2);
      ngtcp2_path_storage ps;
      ngtcp2_path_storage_zero(&ps);
      ngtcp2_pkt_info pi{};
      auto n = ngtcp2_conn_write_connection_close(conn, &ps.path, &pi, buf.data(), buf.size(),
                                                  &ccerr, to_ts(last_now));
      if (n > 0) {
        buf.resize(static_cast<std::size_t>(n));
        close_packet = std::move(buf);
      }
    }
    report_closed(std::move(error), false, app_code);
  }

  void close_application(std::uint64_t code, std::string_view reason, Error error) {
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_default(&ccerr);
    ngtcp2_connection_close_error_set_application_error(
        &ccerr, code, reinterpret_cast<const std::uint8_t*>(reason.data()), reason.size());
    close_with(ccerr, std::move(error), code);
  }

  void close_liberr(int rv, Error error) {
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_default(&ccerr);
    if (rv == NGTCP2_ERR_CRYPTO) {
      std::uint8_t alert = ngtcp2_conn_get_tls_alert(conn);
      if (alert == 0) alert = kAlertBadCertificate;
      ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, alert, nullptr, 0);
    } else {
      ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rv, nullptr, 0);
    }
    close_with(ccerr, std::move(error), 0);
  }

  // A TLS failure of ours (NGTCP2_ERR_CRYPTO): what the certificate check found, else
  // the alert GnuTLS raised.
  Error tls_failure() const {
    if (!tls.refusal().empty()) return make_error(Errc::peer_refused, tls.refusal());
    std::uint8_t alert = ngtcp2_conn_get_tls_alert(conn);
    if (alert == kAlertCertificateRequired)
      return make_error(Errc::peer_refused, "the peer presented no certificate");
    return make_error(Errc::internal,
                      fmt::format("TLS handshake failed (alert {}): {}", alert,
                                  gnutls_alert_get_name(
                                      static_cast<gnutls_alert_description_t>(alert))));
  }

  // The peer closed the connection (we entered the draining period, RFC 9000 s10.2.2).
  void peer_closed() {
    ngtcp2_connection_close_error ccerr;
    ngtcp2_conn_get_connection_close_error(conn, &ccerr);
    std::string reason(reinterpret_cast<const char*>(ccerr.reason), ccerr.reasonlen);
    std::string said = reason.empty() ? std::string() : fmt::format(" ({})", reason);
    if (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION) {
      if (ccerr.error_code == kQuicCloseNormal)
        return report_closed(make_error(Errc::ok, "closed by the peer" + said), true, 0);
      if (ccerr.error_code == kQuicCloseNotAllowed || ccerr.error_code == kQuicClosePortNotExposed)
        return report_closed(make_error(Errc::peer_refused,
                                        (ccerr.error_code == kQuicCloseNotAllowed
                                             ? "the peer does not allow our ID"
                                             : "the port is not exposed") +
                                            said),
                             true, ccerr.error_code);
      return report_closed(make_error(Errc::internal, fmt::format("closed by the peer with code "
                                                                  "{}{}",
                                                                  ccerr.error_code, said)),
                           true, ccerr.error_code);
    }
    // Transport codes 0x0100-0x01ff carry a TLS alert (RFC 9001 s4.8).
    if (ccerr.error_code >= 0x100 && ccerr.error_code <= 0x1ff) {
      auto alert = static_cast<std::uint8_t>(ccerr.error_code - 0x100);
      if (alert == kAlertBadCertificate || alert == kAlertCertificateRequired ||
          (alert >= 43 && alert <= 49))
        return report_closed(
            make_error(Errc::peer_refused,
                       fmt::format("the peer refused our identity (TLS alert {}){}", alert, said)),
            true, 0);
      return report_closed(make_error(Errc::internal, fmt::format("the peer's TLS failed "
                                                                  "(alert {}){}",
                                                                  alert, said)),
                           true, 0);
    }
    if (ccerr.error_code == NGTCP2_NO_ERROR)
      return report_closed(make_error(Errc::ok, "closed by the peer" + said), true, 0);
    report_closed(make_error(Errc::internal, fmt::format("the peer closed the connection with "
                                                         "transport error 0x{:x}{}",
                                                         ccerr.error_code, said)),
                  true, 0);
  }

  // After a datagram: once the handshake is confirmed, decide about the peer.
  void authenticate() {
    if (!confirmed || established || closed) return;
    if (!peer) {
      // ngtcp2 confirmed a handshake whose certificate check never ran: refuse.
      close_application(kQuicCloseNotAllowed, "no certificate",
                        make_error(Errc::peer_refused, "the peer's certificate was not checked"));
      return;
    }
    if (config.server && (!config.allow_peer || !config.allow_peer(*peer))) {
      close_application(kQuicCloseNotAllowed, "not allowed",
                        make_error(Errc::peer_refused,
                                   fmt::format("peer {} is not allowed", peer->to_string())));
      return;
    }
    established = true;
    events.push_back(QuicEvent{QuicEvent::HandshakeDone{*peer}});
    while (!held.empty()) {
      events.push_back(std::move(held.front()));
      held.pop_front();
    }
  }

  // Frees the chunks [base, acked) covers.
  void on_acked(std::int64_t id, std::uint64_t offset, std::uint64_t length) {
    auto it = streams.find(id);
    if (it == streams.end()) return;
    SendStream& s = it->second;
    std::uint64_t acked = offset + length;
    while (!s.chunks.empty() && s.base + s.chunks.front().size <= acked && s.send_index > 0) {
      s.base += s.chunks.front().size;
      s.chunks.pop_front();
      --s.send_index;
    }
    if (s.want_writable && s.buffered() < kStreamSendLimit) {
      s.want_writable = false;
      push_event(QuicEvent::StreamWritable{id});
    }
  }

  // One packet's worth of stream data from `s` (the vectors from the send position on,
  // as far as `limit` bytes: ngtcp2 takes what fits in the packet).
  static std::size_t stream_vecs(const SendStream& s, std::vector<ngtcp2_vec>& vecs,
                                 std::size_t limit) {
    vecs.clear();
    std::size_t total = 0;
    for (std::size_t i = s.send_index; i < s.chunks.size() && total < limit; ++i) {
      const SendChunk& c = s.chunks[i];
      std::size_t from = i == s.send_index ? s.send_offset : 0;
      if (from >= c.size) continue;
      vecs.push_back(ngtcp2_vec{c.data.get() + from, c.size - from});
      total += c.size - from;
    }
    return total;
  }

  static void advance(SendStream& s, std::size_t n) {
    s.sent += n;
    while (n > 0 && s.send_index < s.chunks.size()) {
      const std::size_t size = s.chunks[s.send_index].size;
      std::size_t step = std::min(n, size - s.send_offset);
      s.send_offset += step;
      n -= step;
      if (s.send_offset == size) {
        ++s.send_index;
        s.send_offset = 0;
      }
    }
  }

  // The send side of stream `id`, made for a bidirectional stream the peer opened (RFC
  // 9000 s2.1: its sending half is ours; bit 0x02 set means unidirectional). Null when
  // there is none.
  SendStream* send_stream(std::int64_t id) {
    auto it = streams.find(id);
    if (it != streams.end()) return &it->second;
    if ((id & 0x02) != 0 && !ngtcp2_conn_is_local_stream(conn, id)) return nullptr;
    return &streams.emplace(id, SendStream{}).first->second;
  }

  // The next stream after `round_robin` with something to send, not in `blocked`.
  std::pair<std::int64_t, SendStream*> next_stream(const std::vector<std::int64_t>& blocked) {
    auto usable = [&](const std::pair<const std::int64_t, SendStream>& e) {
      return e.second.has_pending() &&
             std::find(blocked.begin(), blocked.end(), e.first) == blocked.end();
    };
    for (auto it = streams.upper_bound(round_robin); it != streams.end(); ++it)
      if (usable(*it)) return {it->first, &it->second};
    for (auto it = streams.begin(); it != streams.end() && it->first <= round_robin; ++it)
      if (usable(*it)) return {it->first, &it->second};
    return {-1, nullptr};
  }
};

namespace {

using State = QuicConnection::State;

State* state_of(void* user_data) { return static_cast<State*>(user_data); }

ngtcp2_conn* get_conn(ngtcp2_crypto_conn_ref* ref) {
  return static_cast<State*>(ref->user_data)->conn;
}

void random_cb(std::uint8_t* dest, std::size_t length, const ngtcp2_rand_ctx*) {
  tls_random(std::span(dest, length));
}

int new_connection_id_cb(ngtcp2_conn*, ngtcp2_cid* cid, std::uint8_t* token, std::size_t length,
                         void*) {
  if (!tls_random(std::span(cid->data, length)) ||
      !tls_random(std::span(token, NGTCP2_STATELESS_RESET_TOKENLEN)))
    return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = length;
  return 0;
}

int recv_stream_data_cb(ngtcp2_conn*, std::uint32_t flags, std::int64_t id, std::uint64_t,
                        const std::uint8_t* data, std::size_t length, void* user_data, void*) {
  state_of(user_data)->push_stream_data(id, std::span(data, length),
                                        (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
  return 0;
}

int acked_cb(ngtcp2_conn*, std::int64_t id, std::uint64_t offset, std::uint64_t length,
             void* user_data, void*) {
  state_of(user_data)->on_acked(id, offset, length);
  return 0;
}

int stream_open_cb(ngtcp2_conn*, std::int64_t id, void* user_data) {
  state_of(user_data)->push_event(QuicEvent::StreamOpened{id});
  return 0;
}

int stream_close_cb(ngtcp2_conn*, std::uint32_t, std::int64_t id, std::uint64_t, void* user_data,
                    void*) {
  state_of(user_data)->streams.erase(id);
  return 0;
}

int stream_reset_cb(ngtcp2_conn*, std::int64_t id, std::uint64_t, std::uint64_t code,
                    void* user_data, void*) {
  state_of(user_data)->push_event(QuicEvent::StreamReset{id, code});
  return 0;
}

int stream_stop_sending_cb(ngtcp2_conn*, std::int64_t id, std::uint64_t code, void* user_data,
                           void*) {
  State* s = state_of(user_data);
  // ngtcp2 answers STOP_SENDING with RESET_STREAM (RFC 9000 s3.5): nothing more to send.
  if (auto it = s->streams.find(id); it != s->streams.end()) {
    it->second.sent = it->second.end;
    it->second.fin_sent = true;
  }
  s->push_event(QuicEvent::StreamReset{id, code});
  return 0;
}

int recv_datagram_cb(ngtcp2_conn*, std::uint32_t, const std::uint8_t* data, std::size_t length,
                     void* user_data) {
  state_of(user_data)->push_event(
      QuicEvent::Datagram{std::vector<std::uint8_t>(data, data + length)});
  return 0;
}

int handshake_confirmed_cb(ngtcp2_conn*, void* user_data) {
  state_of(user_data)->confirmed = true;
  return 0;
}

ngtcp2_callbacks callbacks(bool server) {
  ngtcp2_callbacks cb{};
  if (server)
    cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  else
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.rand = random_cb;
  cb.get_new_connection_id = new_connection_id_cb;
  cb.recv_stream_data = recv_stream_data_cb;
  cb.acked_stream_data_offset = acked_cb;
  cb.stream_open = stream_open_cb;
  cb.stream_close = stream_close_cb;
  cb.stream_reset = stream_reset_cb;
  cb.stream_stop_sending = stream_stop_sending_cb;
  cb.recv_datagram = recv_datagram_cb;
  // RFC 9001 s4.1.2: a server's handshake is confirmed when it completes (the client's
  // Finished, after its certificate, has been checked); ngtcp2 0.12.1 reports that
  // moment to a server only as handshake_completed.
  if (server)
    cb.handshake_completed = handshake_confirmed_cb;
  else
    cb.handshake_confirmed = handshake_confirmed_cb;
  return cb;
}

void fill_settings(ngtcp2_settings& settings, ngtcp2_transport_params& params,
                   const QuicConfig& config, TimePoint now) {
  ngtcp2_settings_default(&settings);
  settings.initial_ts = to_ts(now);
  settings.max_stream_window = kMaxStreamWindow;
  settings.max_window = kMaxConnectionWindow;
  settings.cc_algo = NGTCP2_CC_ALGO_CUBIC;
  settings.ack_thresh = kAckThreshold;
  ngtcp2_transport_params_default(&params);
  params.initial_max_stream_data_bidi_local = kStreamWindow;
  params.initial_max_stream_data_bidi_remote = kStreamWindow;
  params.initial_max_stream_data_uni = kStreamWindow;
  params.initial_max_data = kConnectionWindow;
  params.initial_max_streams_bidi = kMaxStreams;
  params.initial_max_streams_uni = kMaxStreams;
  params.max_idle_timeout = to_duration(config.idle_timeout);
  params.max_datagram_frame_size = kMaxDatagramFrame;
  params.active_connection_id_limit = 4;  // spare IDs for migration (RFC 9000 s9.5)
}

Result<std::unique_ptr<State>> make_state(const QuicConfig& config, TimePoint now) {
  auto state = std::make_unique<State>();
  state->config = config;
  state->local = config.local;
  state->remote = config.remote;
  state->local_sa = SockAddr(config.local);
  state->remote_sa = SockAddr(config.remote);
  if (state->local_sa.length == 0 || state->remote_sa.length == 0)
    return make_error(Errc::usage, "QUIC needs a local and a remote address");
  state->last_now = now;
  state->conn_ref.get_conn = get_conn;
  state->conn_ref.user_data = state.get();
  return state;
}

// The TLS session of a new connection, and ngtcp2's link to it.
Status attach_tls(State& state) {
  State* s = &state;
  auto check = [s](const PeerId& id) -> std::string {
    if (!s->config.server) {
      if (!s->config.expect_peer || !(id == *s->config.expect_peer))
        return fmt::format("identity mismatch: the peer's key is {}, not the ID dialled",
                           id.to_string());
    }
    s->peer = id;
    return {};
  };
  TlsPinned::Options options;
  options.server = state.config.server;
  options.identity = state.config.identity;
  options.alpn = state.config.alpn;
  options.check_peer = std::move(check);
  options.app_data = &state.conn_ref;
  if (auto st = state.tls.start(options); !st) return st.error();
  if (state.config.server ? ngtcp2_crypto_gnutls_configure_server_session(state.tls.session()) != 0
                          : ngtcp2_crypto_gnutls_configure_client_session(state.tls.session()) != 0)
    return make_error(Errc::internal, "ngtcp2 cannot use the GnuTLS session");
  ngtcp2_conn_set_tls_native_handle(state.conn, state.tls.session());
  ngtcp2_conn_set_keep_alive_timeout(state.conn, to_duration(state.config.keepalive));
  return ok_status();
}

ngtcp2_path path_of(State& s, SockAddr& remote) {
  return ngtcp2_path{{s.local_sa.get(), s.local_sa.length}, {remote.get(), remote.length}, nullptr};
}

}  // namespace

QuicConnection::QuicConnection(std::unique_ptr<State> state) : state_(std::move(state)) {}
QuicConnection::~QuicConnection() = default;

Result<std::unique_ptr<QuicConnection>> QuicConnection::client(const QuicConfig& config,
                                                               TimePoint now) {
  if (config.server) return make_error(Errc::internal, "QuicConnection::client with server set");
  if (!config.expect_peer)
    return make_error(Errc::usage, "a QUIC client needs the ID of the peer it dials");
  auto made = make_state(config, now);
  if (!made) return std::move(made).error();
  auto state = std::move(*made);
  ngtcp2_cid dcid{}, scid{};
  dcid.datalen = 18;  // RFC 9000 s7.2: at least 8 bytes of randomness
  scid.datalen = kCidLength;
  if (!tls_random(std::span(dcid.data, dcid.datalen)) ||
      !tls_random(std::span(scid.data, scid.datalen)))
    return make_error(Errc::internal, "no random bytes for the connection IDs");
  ngtcp2_settings settings;
  ngtcp2_transport_params params;
  fill_settings(settings, params, config, now);
  ngtcp2_callbacks cb = callbacks(false);
  ngtcp2_path path = path_of(*state, state->remote_sa);
  int rv = ngtcp2_conn_client_new(&state->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb,
                                  &settings, &params, nullptr, state.get());
  if (rv != 0)
    return make_error(Errc::internal,
                      fmt::format("ngtcp2_conn_client_new: {}", ngtcp2_strerror(rv)));
  if (auto st = attach_tls(*state); !st) return st.error();
  return std::unique_ptr<QuicConnection>(new QuicConnection(std::move(state)));
}

Result<std::unique_ptr<QuicConnection>> QuicConnection::server(
    const QuicConfig& config, std::span<const std::uint8_t> first_packet, TimePoint now) {
  if (!config.server) return make_error(Errc::internal, "QuicConnection::server without server");
  ngtcp2_pkt_hd hd{};
  if (ngtcp2_accept(&hd, first_packet.data(), first_packet.size()) != 0)
    return make_error(Errc::usage, "not a QUIC Initial packet a server can accept");
  auto made = make_state(config, now);
  if (!made) return std::move(made).error();
  auto state = std::move(*made);
  ngtcp2_cid scid{};
  scid.datalen = kCidLength;
  if (!tls_random(std::span(scid.data, scid.datalen)))
    return make_error(Errc::internal, "no random bytes for the connection ID");
  ngtcp2_settings settings;
  ngtcp2_transport_params params;
  fill_settings(settings, params, config, now);
  // RFC 9000 s7.3: the server echoes the client's first Destination Connection ID.
  params.original_dcid = hd.dcid;
  params.stateless_reset_token_present = 1;
  if (!tls_random(std::span(params.stateless_reset_token, NGTCP2_STATELESS_RESET_TOKENLEN)))
    return make_error(Errc::internal, "no random bytes for the stateless reset token");
  ngtcp2_callbacks cb = callbacks(true);
  ngtcp2_path path = path_of(*state, state->remote_sa);
  int rv = ngtcp2_conn_server_new(&state->conn, &hd.scid, &scid, &path, hd.version, &cb, &settings,
                                  &params, nullptr, state.get());
  if (rv != 0)
    return make_error(Errc::internal,
                      fmt::format("ngtcp2_conn_server_new: {}", ngtcp2_strerror(rv)));
  if (auto st = attach_tls(*state); !st) return st.error();
  std::unique_ptr<QuicConnection> connection(new QuicConnection(std::move(state)));
  if (auto st = connection->receive(first_packet, config.remote, now); !st) {
    if (connection->closed()) return std::move(st).error();
  }
  return connection;
}

Status QuicConnection::receive(std::span<const std::uint8_t> datagram, const Endpoint& from,
                               TimePoint now) {
  State& s = *state_;
  s.last_now = std::max(s.last_now, now);
  if (s.closed) return make_error(Errc::internal, "the QUIC connection is closed");
  SockAddr from_sa(from);
  if (from_sa.length == 0) return make_error(Errc::usage, "bad source address");
  ngtcp2_path path = path_of(s, from_sa);
  ngtcp2_pkt_info pi{};
  int rv = ngtcp2_conn_read_pkt(s.conn, &path, &pi, datagram.data(), datagram.size(), to_ts(now));
  if (rv == 0) {
    // The peer may have moved (RFC 9000 s9.3): follow the path ngtcp2 now uses.
    if (const ngtcp2_path* p = ngtcp2_conn_get_path(s.conn); p && p->remote.addr) {
      if (auto e = Endpoint::from_sockaddr(p->remote.addr, p->remote.addrlen);
          e && !(*e == s.remote)) {
        s.remote = *e;
        s.remote_sa = SockAddr(s.remote);
      }
    }
    s.authenticate();
    return ok_status();
  }
  switch (rv) {
    case NGTCP2_ERR_DRAINING: s.peer_closed(); return ok_status();
    case NGTCP2_ERR_CLOSING: return ok_status();
    case NGTCP2_ERR_DROP_CONN:
      s.report_closed(make_error(Errc::internal, "the QUIC connection was dropped"), false, 0);
      return make_error(Errc::internal, "the QUIC connection was dropped");
    case NGTCP2_ERR_DISCARD_PKT:
    case NGTCP2_ERR_DECRYPT:
      return make_error(Errc::usage, "a datagram that is not QUIC of this connection");
    case NGTCP2_ERR_CRYPTO: {
      Error e = s.tls_failure();
      s.close_liberr(rv, e);
      return e;
    }
    default: {
      Error e = make_error(Errc::internal, fmt::format("QUIC: {}", ngtcp2_strerror(rv)));
      s.close_liberr(rv, e);
      return e;
    }
  }
}

void QuicConnection::write_packets(DatagramBuffer& out, TimePoint now) {
  State& s = *state_;
  s.last_now = std::max(s.last_now, now);
  if (!s.close_packet.empty()) {
    out.push(s.close_packet);
    s.close_packet.clear();
  }
  if (s.closed) return;
  s.write_again = false;
  ngtcp2_tstamp ts = to_ts(now);
  // Room for the largest packet we may send, not only the path's current size: a PMTU
  // probe (RFC 9000 s14.3) is bigger, and ngtcp2 writes none into less room.
  const std::size_t room = ngtcp2_conn_get_max_tx_udp_payload_size(s.conn);
  const std::size_t max_udp = ngtcp2_conn_get_path_max_tx_udp_payload_size(s.conn);
  // The send quantum, in whole GSO sends of full-sized packets: a packet beyond what one
  // send takes would go out alone in a system call of its own.
  const std::size_t per_send = std::clamp<std::size_t>(kMaxGsoBytes / max_udp, 1, kMaxGsoSegments) *
                               max_udp;
  const std::size_t quantum = std::max(per_send,
                                       ngtcp2_conn_get_send_quantum(s.conn) / per_send * per_send);
  std::size_t written = 0;
  std::vector<std::int64_t> blocked;
  std::vector<ngtcp2_vec> vecs;
  // Each packet is written where it will be sent from. A packet ngtcp2 is still
  // filling (NGTCP2_ERR_WRITE_MORE) stays in the same room until it is committed.
  std::span<std::uint8_t> buf = out.room(room);
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  for (;;) {
    ngtcp2_pkt_info pi{};
    ngtcp2_ssize n = 0;
    if (s.established && !s.datagrams.empty()) {
      auto& d = s.datagrams.front();
      ngtcp2_vec v{d.data(), d.size()};
      int accepted = 0;
      n = ngtcp2_conn_writev_datagram(s.conn, &ps.path, &pi, buf.data(), buf.size(), &accepted,
                                      NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, &v, 1, ts);
      if (accepted || n == NGTCP2_ERR_INVALID_ARGUMENT) s.datagrams.pop_front();
      if (n == NGTCP2_ERR_WRITE_MORE || n == NGTCP2_ERR_INVALID_ARGUMENT) continue;
    } else if (auto [id, stream] = s.established
                                       ? s.next_stream(blocked)
                                       : std::pair<std::int64_t, SendStream*>{-1, nullptr};
               stream != nullptr) {
      SendStream& st = *stream;
      std::size_t total = State::stream_vecs(st, vecs, buf.size());
      std::uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
      if (st.fin && !st.fin_sent) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
      ngtcp2_ssize taken = -1;
      n = ngtcp2_conn_writev_stream(s.conn, &ps.path, &pi, buf.data(), buf.size(), &taken, flags,
                                    id, vecs.data(), vecs.size(), ts);
      s.round_robin = id;
      if (taken >= 0) {
        State::advance(st, static_cast<std::size_t>(taken));
        if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && static_cast<std::size_t>(taken) == total)
          st.fin_sent = true;
      }
      if (n == NGTCP2_ERR_WRITE_MORE) continue;
      if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
          n == NGTCP2_ERR_STREAM_NOT_FOUND) {
        if (n != NGTCP2_ERR_STREAM_DATA_BLOCKED) s.streams.erase(id);
        blocked.push_back(id);
        continue;
      }
    } else {
      n = ngtcp2_conn_write_pkt(s.conn, &ps.path, &pi, buf.data(), buf.size(), ts);
    }
    if (n < 0) {
      s.close_liberr(static_cast<int>(n),
                     make_error(Errc::internal,
                                fmt::format("QUIC: {}", ngtcp2_strerror(static_cast<int>(n)))));
      if (!s.close_packet.empty()) {
        out.push(s.close_packet);
        s.close_packet.clear();
      }
      return;
    }
    if (n == 0) break;  // nothing more now (or congestion-limited)
    out.commit(static_cast<std::size_t>(n));
    written += static_cast<std::size_t>(n);
    if (written + max_udp > quantum) {
      s.write_again = true;
      break;
    }
    buf = out.room(room);
  }
  // Pacing (RFC 9002 s7.7). Before the first RTT sample ngtcp2 0.12.1 paces with the
  // 333 ms initial RTT and holds the client's second flight back by tens of ms, so the
  // update is skipped until there is a sample.
  ngtcp2_conn_stat stat{};
  ngtcp2_conn_get_conn_stat(s.conn, &stat);
  if (stat.first_rtt_sample_ts != UINT64_MAX) {
    ngtcp2_conn_update_pkt_tx_time(s.conn, ts);
    s.write_again = false;  // the pacing timer says when
  }
}

bool QuicConnection::addressed_to_us(std::span<const std::uint8_t> datagram) const {
  const State& s = *state_;
  // Short header: the form bit clear, then our connection ID of kCidLength bytes.
  if (s.closed || datagram.size() < 1 + kCidLength || (datagram[0] & 0x80) != 0) return false;
  std::vector<ngtcp2_cid> ids(ngtcp2_conn_get_num_scid(s.conn));
  const std::size_t n = ngtcp2_conn_get_scid(s.conn, ids.data());
  for (std::size_t i = 0; i < n; ++i)
    if (ids[i].datalen == kCidLength &&
        std::memcmp(ids[i].data, datagram.data() + 1, kCidLength) == 0)
      return true;
  return false;
}

TimePoint QuicConnection::next_timeout() const {
  const State& s = *state_;
  if (s.closed) return TimePoint::max();
  if (s.write_again) return s.last_now;
  return from_ts(ngtcp2_conn_get_expiry(s.conn));
}

void QuicConnection::on_timeout(TimePoint now) {
  State& s = *state_;
  s.last_now = std::max(s.last_now, now);
  s.write_again = false;
  if (s.closed) return;
  int rv = ngtcp2_conn_handle_expiry(s.conn, to_ts(now));
  if (rv == 0) return;
  if (rv == NGTCP2_ERR_IDLE_CLOSE) {
    // RFC 9000 s10.1: silently closed, nothing sent.
    s.report_closed(make_error(Errc::timeout, "the peer went silent (idle timeout)"), false, 0);
    return;
  }
  if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
    s.report_closed(make_error(Errc::timeout, "the QUIC handshake timed out"), false, 0);
    return;
  }
  s.close_liberr(rv, make_error(Errc::internal, fmt::format("QUIC: {}", ngtcp2_strerror(rv))));
}

bool QuicConnection::established() const { return state_->established && !state_->closed; }
bool QuicConnection::closed() const { return state_->closed; }
const PeerId* QuicConnection::peer() const {
  return state_->established && state_->peer ? &*state_->peer : nullptr;
}
const Endpoint& QuicConnection::local() const { return state_->local; }
const Endpoint& QuicConnection::remote() const { return state_->remote; }

Result<std::int64_t> QuicConnection::open_stream() {
  State& s = *state_;
  if (!established()) return make_error(Errc::internal, "the QUIC connection is not established");
  std::int64_t id = -1;
  int rv = ngtcp2_conn_open_bidi_stream(s.conn, &id, nullptr);
  if (rv != 0)
    return make_error(Errc::internal,
                      fmt::format("cannot open a QUIC stream: {}", ngtcp2_strerror(rv)));
  s.streams[id];
  return id;
}

std::size_t QuicConnection::write_stream(std::int64_t id, std::span<const std::uint8_t> bytes,
                                         bool fin) {
  State& s = *state_;
  if (!established()) return 0;
  SendStream* st = s.send_stream(id);
  if (st == nullptr || st->fin) return 0;
  std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(st->room(), bytes.size()));
  for (std::size_t done = 0; done < take;) {
    auto to = st->space(take - done);
    std::memcpy(to.data(), bytes.data() + done, to.size());
    st->commit(to.size());
    done += to.size();
  }
  if (take < bytes.size())
    st->want_writable = true;
  else if (fin)
    st->fin = true;
  return take;
}

std::size_t QuicConnection::stream_room(std::int64_t id) {
  State& s = *state_;
  if (!established()) return 0;
  SendStream* st = s.send_stream(id);
  if (st == nullptr || st->fin) return 0;
  const auto room = static_cast<std::size_t>(st->room());
  if (room == 0) st->want_writable = true;
  return room;
}

std::span<std::uint8_t> QuicConnection::stream_space(std::int64_t id, std::size_t max) {
  const std::size_t room = std::min(stream_room(id), max);
  if (room == 0) return {};
  return state_->streams.find(id)->second.space(room);
}

void QuicConnection::commit_stream(std::int64_t id, std::size_t n) {
  State& s = *state_;
  auto it = s.streams.find(id);
  if (it == s.streams.end() || it->second.chunks.empty() || n == 0) return;
  it->second.commit(n);
}

void QuicConnection::consume_stream(std::int64_t id, std::size_t n) {
  State& s = *state_;
  if (s.closed || n == 0) return;
  ngtcp2_conn_extend_max_stream_offset(s.conn, id, n);
  ngtcp2_conn_extend_max_offset(s.conn, n);
}

void QuicConnection::reset_stream(std::int64_t id, std::uint64_t code) {
  State& s = *state_;
  if (s.closed) return;
  ngtcp2_conn_shutdown_stream(s.conn, id, code);
  if (auto it = s.streams.find(id); it != s.streams.end()) {
    it->second.sent = it->second.end;
    it->second.fin_sent = true;
  }
}

std::size_t QuicConnection::max_datagram_size() const {
  const State& s = *state_;
  if (!established()) return 0;
  const ngtcp2_transport_params* params = ngtcp2_conn_get_remote_transport_params(s.conn);
  if (!params || params->max_datagram_frame_size == 0) return 0;
  // A short header (1 + DCID + up to 4 bytes of packet number), the AEAD tag (16) and the
  // frame's type and length (1 + up to 4) around the payload.
  std::size_t overhead = 1 + ngtcp2_conn_get_dcid(s.conn)->datalen + 4 + 16 + 5;
  std::size_t udp = ngtcp2_conn_get_path_max_tx_udp_payload_size(s.conn);
  std::size_t by_path = udp > overhead ? udp - overhead : 0;
  std::size_t by_peer = params->max_datagram_frame_size > 5
                            ? static_cast<std::size_t>(params->max_datagram_frame_size - 5)
                            : 0;
  return std::min(by_path, by_peer);
}

Status QuicConnection::send_datagram(std::span<const std::uint8_t> bytes) {
  State& s = *state_;
  if (!established()) return make_error(Errc::internal, "the QUIC connection is not established");
  std::size_t max = max_datagram_size();
  if (max == 0) return make_error(Errc::internal, "the peer does not take QUIC datagrams");
  if (bytes.size() > max)
    return make_error(Errc::usage, fmt::format("a datagram of {} bytes is too big for the path "
                                               "(at most {})",
                                               bytes.size(), max));
  if (s.datagrams.size() >= kMaxQueuedDatagrams) s.datagrams.pop_front();
  s.datagrams.emplace_back(bytes.begin(), bytes.end());
  return ok_status();
}

void QuicConnection::close(std::uint64_t app_code, std::string_view reason) {
  State& s = *state_;
  if (s.closed) return;
  s.close_application(app_code, reason,
                      make_error(app_code == kQuicCloseNormal ? Errc::ok : Errc::peer_refused,
                                 std::string(reason)));
}

void QuicConnection::migrate(const Endpoint& new_local, const Endpoint& new_remote, TimePoint now) {
  State& s = *state_;
  s.last_now = std::max(s.last_now, now);
  if (s.closed) return;
  SockAddr local_sa(new_local), remote_sa(new_remote);
  if (local_sa.length == 0 || remote_sa.length == 0) return;
  s.local = new_local;
  s.remote = new_remote;
  s.local_sa = local_sa;
  s.remote_sa = remote_sa;
  ngtcp2_path path = path_of(s, s.remote_sa);
  // Only a client moves (RFC 9000 s9: the server's address is fixed; it follows a client
  // that moved). A new path needs a spare connection ID of the peer; without one the
  // local address is just replaced, as a NAT rebinding would look to the peer.
  if (!s.config.server && ngtcp2_conn_initiate_immediate_migration(s.conn, &path, to_ts(now)) == 0)
    return;
  ngtcp2_addr addr{s.local_sa.get(), s.local_sa.length};
  ngtcp2_conn_set_local_addr(s.conn, &addr);
}

std::optional<QuicEvent> QuicConnection::next_event() {
  State& s = *state_;
  if (s.events.empty()) return std::nullopt;
  QuicEvent e = std::move(s.events.front());
  s.events.pop_front();
  return e;
}

}  // namespace porthole::detail
