// The ICE agent (RFC 8445) of one punch: connectivity checks between our candidates and
// the peer's, nomination, and consent freshness (RFC 7675) afterwards, as a sans-IO
// state machine. It is fed datagrams (STUN only: the UDP mux hands it the STUN ones of
// the punch socket) and the time, says what to send where (take_outgoing) and when it
// next needs to run (next_wakeup). No socket, no clock read, no globals; transaction IDs
// and the consent jitter come from the caller's RandomFn, so a test is deterministic.
//
// One socket carries every local candidate (host, mapped, server-reflexive are all the
// same local port seen from different places), so pairs are pruned to one per remote
// address (RFC 8445 s6.1.2.4: same base, same remote candidate): a check goes out once
// and the answer's XOR-MAPPED-ADDRESS says which of our candidates the peer saw.
//
// A relayed candidate (our TURN allocation, RFC 8656) has another base, the relay: a
// remote reached through it is a pair of its own ("via relay"), fed with what the TURN
// client unwrapped (on_datagram's `relayed`) and answered the same way
// (Outgoing::relayed), with the relayed candidate's priority, the lowest (s5.1.2.2).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec/ice_priority.hpp"
#include "codec/rendezvous_codec.hpp"
#include "codec/stun_codec.hpp"
#include "net/deadline.hpp"
#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/log.hpp"
#include "proto/stun_transaction.hpp"

namespace porthole::detail {

// Fills the span with random bytes (transaction IDs, consent jitter).
using RandomFn = std::function<void(std::span<std::uint8_t>)>;
// This host's Ed25519 signature (64 bytes) of the bytes (porthole::Identity::sign).
using IceSignFn = std::function<Result<std::vector<std::uint8_t>>(std::span<const std::uint8_t>)>;
// True when the signature (second) is the named peer's over the bytes (first):
// porthole::verify_signature with the PeerId the user named.
using IceVerifyFn =
    std::function<bool(std::span<const std::uint8_t>, std::span<const std::uint8_t>)>;

// Signed checks: the ufrag and password travel in the descriptions, which the
// rendezvous server reads, so MESSAGE-INTEGRITY proves only that the sender saw them.
// With sign and verify_peer set, every request and every response carries a SIGNATURE
// attribute (rendezvous::attr::signature, 64 bytes) just before MESSAGE-INTEGRITY, over
// the label, a 0x00 byte, then the message up to that attribute with Message Length
// counting up to its end (as RFC 8489 s14.5 does for MESSAGE-INTEGRITY): transaction ID,
// USERNAME, PRIORITY, role, USE-CANDIDATE, and in answers XOR-MAPPED-ADDRESS.
inline constexpr std::string_view kIceCheckSignatureLabel = "porthole ice check v1";
inline constexpr std::string_view kIceAnswerSignatureLabel = "porthole ice answer v1";
// The bytes such a SIGNATURE signs: label, 0x00, `covered`.
std::vector<std::uint8_t> ice_signing_input(std::string_view label,
                                            std::span<const std::uint8_t> covered);

struct IceAgentConfig {
  bool controlling = false;
  std::uint64_t tie_breaker = 0;  // RFC 8445 s7.1.1: 64 random bits, from the caller
  std::string local_ufrag;        // ice-chars, 4..32 (what the description carries)
  std::string local_password;     // ice-chars, 22..64
  // Ta (s14.2): one new check (ordinary or triggered) per Ta over all pairs.
  std::chrono::milliseconds pacing{20};
  // Each check's retransmissions (RFC 8489 s6.2.1 with a LAN-sized RTO, s14.3 lets the
  // agent choose): sent at 0, 100, 300, 700, 1500, 3100 ms, failed at 3900 ms.
  StunRetransmission retransmission{std::chrono::milliseconds(100), 6, 8};
  // After the first pair succeeds the controlling side waits this long for a better one
  // before it nominates the best valid pair (s8.1.1); 0 nominates the first at once.
  std::chrono::milliseconds nomination_window{0};
  // A relayed pair that succeeds first waits this long for a direct one before it is
  // nominated (a direct pair that succeeds meanwhile is nominated at once instead).
  std::chrono::milliseconds relay_grace{1000};
  // How long after selection the caller should keep feeding the agent before handing
  // the socket away, so the peer's retransmitted checks are still answered.
  std::chrono::milliseconds linger{500};
  // RFC 7675 s5.1: a consent check every 5 s +-20 %, consent lost 30 s after the last
  // answer.
  std::chrono::milliseconds consent_interval{5000};
  std::chrono::milliseconds consent_timeout{30000};
  // Checking gives up here (no deadline for consent afterwards).
  Clock::time_point deadline = Clock::time_point::max();
  // Debug lines for -v: each check sent, answered, dropped (and why), each state change.
  LogFn log;
  // Both set: signed checks (above). A request without the peer's valid signature is
  // dropped unanswered, a response without one is ignored (the check keeps waiting), and
  // the controlled side takes a USE-CANDIDATE only on a pair its own signed check proved
  // (a signed check replayed from another address proves nothing about that address).
  // Either unset: unsigned checks, MESSAGE-INTEGRITY only.
  IceSignFn sign;
  IceVerifyFn verify_peer;
  // True: every pair failing does not end the checks, only the deadline does (port
  // prediction and the birthday method: the peer's checks may still find a way in
  // through a probed port, src/core/punch_strategy.hpp).
  bool keep_checking = false;
  // The upgrade of a relayed path (start_upgrade()): a new round of checks on every
  // direct pair (one whose ends are both without a relay) each upgrade_interval, the
  // first one upgrade_interval after start_upgrade(), at most upgrade_rounds rounds
  // (then the path stays relayed). A round is one paced check (Ta) per direct pair,
  // each retransmitted as above: at most 6 packets per pair per round.
  std::chrono::milliseconds upgrade_interval{5000};
  int upgrade_rounds = 24;
};

// Errc::usage naming the field when a ufrag or password breaks RFC 8445 s5.3's bounds.
Status check_ice_credentials(const std::string& ufrag, const std::string& password);

// Whose view of the path: this side's (the shared rule of `porthole punch --json`).
enum class PathKind : std::uint8_t { host, server_reflexive, peer_reflexive, mapped, relayed };
const char* path_kind_name(PathKind kind) noexcept;  // "host", "server-reflexive", ...

struct SelectedPath {
  Endpoint remote;                   // where the peer is, as we send to it
  ice::CandidateType remote_type{};  // peer_reflexive when learned from its check
  // Our address as the peer saw it: the XOR-MAPPED-ADDRESS of the answer to our check
  // on this pair. Empty on the controlled side until one of its own checks on the pair
  // is answered (it is connected by the peer's USE-CANDIDATE check alone).
  std::optional<Endpoint> local_seen;
  // The local candidate local_seen equals (the highest-priority one when several share
  // the address); peer_reflexive when it is none of ours; host while local_seen is empty.
  ice::CandidateType local_type = ice::CandidateType::host;
  Endpoint local;  // that candidate's address, or local_seen when it is none of ours
  PathKind kind = PathKind::host;
  // Through our own TURN allocation: what goes to `remote` must be relayed.
  bool via_relay = false;
  Clock::duration elapsed{};  // from set_remote() (when checks began) to selection
};

enum class PairOutcome : std::uint8_t {
  not_tried,  // no check sent
  checking,   // checks sent, no answer yet (or cancelled when another pair won)
  succeeded,  // an authenticated answer came back
  failed,     // no answer after every retransmission or by the deadline, or an error
  nominated,  // the selected pair
};

struct PairReport {
  Endpoint local;  // our candidate the peer answered for, else our best one
  Endpoint remote;
  ice::CandidateType remote_type{};
  bool remote_learned = false;  // peer-reflexive: learned from an incoming check
  bool via_relay = false;       // through our TURN allocation (local: the relayed address)
  int checks_sent = 0;          // requests sent on the pair, retransmissions included
  int answers = 0;              // authenticated answers accepted
  PairOutcome outcome = PairOutcome::not_tried;
  int error_code = 0;  // with failed: the STUN error (0: no answer)
};
// "succeeded", "failed: no answer", "failed: error 400", "not tried", "nominated",
// "checking".
std::string describe_outcome(const PairReport& report);

class IceAgent {
 public:
  enum class State {
    waiting,       // no remote description yet (incoming checks are answered)
    checking,      // checks running
    connected,     // a pair is selected (consent checks keep it fresh)
    failed,        // every pair failed, the deadline passed, or the config is unusable
    disconnected,  // connected, then consent was lost (RFC 7675 s5.1)
  };

  struct Outgoing {
    Endpoint to;
    std::vector<std::uint8_t> bytes;
    bool relayed = false;  // send through our TURN allocation to `to`
  };

  // `local`: this side's candidates (all on the one socket). A config whose credentials
  // check_ice_credentials() refuses leaves the agent failed (failure() says why).
  IceAgent(IceAgentConfig config, std::vector<rendezvous::Candidate> local, RandomFn random);

  // The peer's credentials, from its description: checks start at once. Errc::usage
  // when they break the bounds (the agent is unchanged); calling it again is a no-op.
  Status set_remote(std::string ufrag, const std::string& password, Clock::time_point now);
  // The same with the description's candidates, added first: the first check then goes
  // to the best pair, not to whichever candidate add_remote_candidate() saw first.
  Status set_remote(std::string ufrag, const std::string& password,
                    std::span<const rendezvous::Candidate> candidates, Clock::time_point now);
  // A candidate of the peer (trickle-friendly: before or after set_remote). Candidates
  // of an address family none of ours has are ignored, as are repeats of an address.
  void add_remote_candidate(const rendezvous::Candidate& candidate, Clock::time_point now);
  // A STUN datagram that arrived on the socket from `from` (`relayed`: through our TURN
  // allocation, `from` the peer address the relay saw). Anything else is dropped.
  // True when it was the peer's: a check or an answer that passed MESSAGE-INTEGRITY
  // (and, signing, the peer's SIGNATURE).
  bool on_datagram(std::span<const std::uint8_t> bytes, const Endpoint& from, Clock::time_point now,
                   bool relayed = false);
  // A probe (port prediction, the birthday method): one check, as an ordinary one
  // would be, for an address the peer may have that no pair has. It is sent once and
  // never retransmitted, and its answer is not waited for: when it gets through, the
  // peer's triggered check back (RFC 8445 s7.3.1.4) makes the pair. Empty before
  // set_remote() or when signing fails. `to`: where it goes (never through a relay).
  std::optional<std::vector<std::uint8_t>> probe_check(const Endpoint& to);
  std::size_t probes() const noexcept { return probes_; }  // probe_check()s made
  // IceAgentConfig::keep_checking, once the strategy is known (after the peer's
  // description, when the agent already runs).
  void set_keep_checking(bool on) noexcept { config_.keep_checking = on; }
  void on_timer(Clock::time_point now);

  // Connected on a relayed pair: keep checking the direct pairs (IceAgentConfig's
  // upgrade_interval and upgrade_rounds) and move the selection to the first one both
  // sides confirm, as nomination does (RFC 8445 s8.1.1, s7.3.1.5): the controlling side
  // when its USE-CANDIDATE check on a direct pair it proved is answered, the controlled
  // side when the peer's USE-CANDIDATE check arrives on a direct pair whose own (signed)
  // check was answered. Consent checks (RFC 7675) go on, on the relayed pair until the
  // move and on the direct one after it. No-op in any other state or on a direct pair.
  void start_upgrade(Clock::time_point now);
  bool upgrading() const noexcept { return upgrading_; }
  int upgrade_rounds_done() const noexcept { return upgrade_rounds_done_; }
  // True once after the selection moved from the relayed pair to a direct one.
  bool take_upgraded() noexcept { return std::exchange(upgraded_, false); }
  // True when a direct pair to `remote` succeeded (an authenticated answer from there):
  // while the peer moves first, its datagrams from there are its.
  bool proven_direct(const Endpoint& remote) const;

  // What to send now, in order; the queue is emptied.
  std::vector<Outgoing> take_outgoing();
  std::optional<Clock::time_point> next_wakeup() const;

  State state() const noexcept { return state_; }
  bool controlling() const noexcept { return config_.controlling; }  // after role conflicts
  const std::string& failure() const noexcept { return failure_; }
  std::optional<SelectedPath> selected() const;
  // Until when the caller should keep the agent running after selection (linger).
  std::optional<Clock::time_point> linger_until() const;
  std::vector<PairReport> report() const;

  // The socket now belongs to an application: nothing more is sent or answered, no
  // timer is needed.
  void quiesce();
  bool quiesced() const noexcept { return quiesced_; }

 private:
  struct Remote {
    Endpoint address;
    ice::CandidateType type{};
    std::uint32_t priority = 0;
    bool learned = false;
    bool relayed = false;  // reached through our TURN allocation
  };
  enum class PairState { waiting, in_progress, succeeded, failed };
  struct Pair {
    std::size_t remote = 0;  // into remotes_
    std::uint64_t priority = 0;
    PairState state = PairState::waiting;
    int checks_sent = 0;
    int answers = 0;
    int error_code = 0;
    bool queued = false;              // in triggered_
    bool use_candidate_seen = false;  // controlled: the peer nominated it
    std::optional<Endpoint> local_seen;
  };
  enum class CheckKind { ordinary, nomination, consent };
  struct Check {
    std::size_t pair = 0;
    CheckKind kind = CheckKind::ordinary;
    stun::TransactionId id{};
    std::vector<std::uint8_t> bytes;
    std::vector<std::chrono::milliseconds> schedule;  // retransmission_schedule()
    Clock::time_point first_sent{};
    std::size_t sent = 0;
    bool expedited = false;  // resent early once because the peer's check arrived
  };
  struct EarlyCheck {  // answered before set_remote(): acted on once the peer is known
    Endpoint from;
    bool relayed = false;
    std::string remote_ufrag;
    std::uint32_t priority = 0;
    bool use_candidate = false;
  };

  void run(Clock::time_point now);
  void start_check(std::size_t pair, CheckKind kind, Clock::time_point now);
  // A check's bytes (s7.2.2), for `remote` (`relayed`: through our TURN allocation);
  // empty when signing fails.
  std::optional<std::vector<std::uint8_t>> encode_check(const stun::TransactionId& id,
                                                        const Endpoint& remote, bool relayed,
                                                        bool use_candidate);
  void send_due(Clock::time_point now);
  void settle_timeouts(Clock::time_point now);
  void maybe_nominate(Clock::time_point now);
  void connect(std::size_t pair, Clock::time_point now);
  // Upgrade (start_upgrade()): a new round when due, the next paced check on a direct
  // pair, the end when the rounds are spent.
  void run_upgrade(Clock::time_point now);
  void on_direct_success(std::size_t pair, bool nomination, Clock::time_point now);
  void upgrade_to(std::size_t pair, Clock::time_point now);
  // The next pair to check: a triggered one first (s6.1.4.2), else the best waiting one
  // (only direct ones with `direct_only`).
  std::optional<std::size_t> next_check_pair(bool direct_only);
  bool upgrade_candidate(std::size_t pair) const;  // direct, and not a relay's address
  void fail(std::string why);
  // Both: true when `m` was the peer's (authenticated).
  bool handle_request(const stun::Message& m, std::span<const std::uint8_t> bytes,
                      const Endpoint& from, bool relayed, Clock::time_point now);
  bool handle_response(const stun::Message& m, std::span<const std::uint8_t> bytes,
                       const Endpoint& from, bool relayed, Clock::time_point now);
  void on_peer_check(const Endpoint& from, bool relayed, std::uint32_t priority, bool use_candidate,
                     Clock::time_point now);
  void answer(const stun::Message& request, const Endpoint& from, bool relayed, int error_code,
              const std::vector<std::uint16_t>& unknown);
  void switch_role(Clock::time_point now);
  void recompute_priorities();
  std::size_t add_remote(const Endpoint& address, ice::CandidateType type, std::uint32_t priority,
                         bool learned, bool relayed = false);
  std::optional<std::size_t> pair_for(const Endpoint& remote, bool relayed = false) const;
  // Our best candidate for pairs to `remote`: the relayed one for pairs via the relay,
  // else the best of the others.
  std::optional<std::size_t> best_local_for(const Endpoint& remote, bool relayed = false) const;
  bool relayed_pair(std::size_t pair) const;  // either end a relay
  void send_to_pair(std::size_t pair, const std::vector<std::uint8_t>& bytes);
  std::optional<std::size_t> local_matching(const Endpoint& seen) const;
  bool pair_busy(std::size_t pair) const;
  bool signing() const noexcept { return config_.sign && config_.verify_peer; }
  // Adds SIGNATURE under `label` when signing; false when the signer failed.
  bool add_signature(stun::MessageWriter& w, std::string_view label) const;
  // True when `m` carries the peer's valid SIGNATURE under `label` before its
  // MESSAGE-INTEGRITY.
  bool peer_signed(const stun::Message& m, std::span<const std::uint8_t> bytes,
                   std::string_view label) const;
  stun::TransactionId new_transaction_id();
  void debug(const std::string& text) const;
  Clock::duration consent_jitter();

  IceAgentConfig config_;
  std::vector<rendezvous::Candidate> local_;
  RandomFn random_;
  std::optional<stun::IntegrityKey> local_key_;
  std::optional<stun::IntegrityKey> remote_key_;
  std::string remote_ufrag_;
  bool remote_known_ = false;

  std::vector<Remote> remotes_;
  std::vector<Pair> pairs_;
  std::vector<Check> checks_;
  std::deque<std::size_t> triggered_;
  std::vector<EarlyCheck> early_;
  std::vector<Outgoing> outgoing_;

  State state_ = State::waiting;
  std::string failure_;
  bool quiesced_ = false;
  std::size_t probes_ = 0;
  Clock::time_point started_{};
  Clock::time_point next_paced_{};  // no new check before this
  std::optional<Clock::time_point> nominate_at_;
  std::optional<std::size_t> selected_;
  Clock::time_point connected_at_{};
  Clock::time_point next_consent_{};
  Clock::time_point consent_until_{};
  bool upgrading_ = false;
  bool upgraded_ = false;
  int upgrade_rounds_done_ = 0;
  Clock::time_point next_round_{};
};

const char* ice_state_name(IceAgent::State state) noexcept;

}  // namespace porthole::detail
