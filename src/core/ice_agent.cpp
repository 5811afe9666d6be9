// The ICE agent's decisions, with the RFC 8445 / RFC 7675 section each one follows.
#include "core/ice_agent.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include <fmt/format.h>

#include "codec/ed25519.hpp"

namespace porthole::detail {
namespace {

namespace attr = stun::attr;
using ice::CandidateType;

// Early checks remembered before the peer's description: a handful is all an honest
// peer sends (its candidates are few); more would only be a flood.
constexpr std::size_t kMaxEarlyChecks = 16;
// Remote addresses (signalled and learned): a description carries at most
// rendezvous::kMaxCandidates; the rest are peer-reflexive ones, a few per NAT.
constexpr std::size_t kMaxRemotes = 64;

bool is_ice_char(char c) noexcept {  // RFC 8445 s15.1: ALPHA / DIGIT / "+" / "/"
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

Status check_ice_text(const std::string& text, const char* what, std::size_t min, std::size_t max) {
  if (text.size() < min || text.size() > max)
    return make_error(Errc::usage, fmt::format("ICE {} must be {} to {} characters, not {}", what,
                                               min, max, text.size()));
  if (!std::all_of(text.begin(), text.end(), is_ice_char))
    return make_error(Errc::usage,
                      fmt::format("ICE {} may hold only letters, digits, '+' and '/'", what));
  return ok_status();
}

bool same_family(const Endpoint& a, const Endpoint& b) noexcept {
  return a.ip.is_v4() == b.ip.is_v4();
}

// The path kind from this side's view: a relay at either end decides it, then a mapped
// candidate at either end, then host at both ends, then an address one side learned from
// the other's packets.
PathKind path_kind(CandidateType remote, std::optional<CandidateType> local, bool via_relay) {
  if (via_relay || remote == CandidateType::relayed || local == CandidateType::relayed)
    return PathKind::relayed;
  if (remote == CandidateType::mapped || local == CandidateType::mapped) return PathKind::mapped;
  if (remote == CandidateType::peer_reflexive || local == CandidateType::peer_reflexive)
    return PathKind::peer_reflexive;
  if (remote == CandidateType::host && (!local || *local == CandidateType::host))
    return PathKind::host;
  return PathKind::server_reflexive;
}

}  // namespace

Status check_ice_credentials(const std::string& ufrag, const std::string& password) {
  auto u = check_ice_text(ufrag, "ufrag", rendezvous::kUfragMin, rendezvous::kUfragMax);
  if (!u) return u;
  return check_ice_text(password, "password", rendezvous::kPasswordMin, rendezvous::kPasswordMax);
}

std::vector<std::uint8_t> ice_signing_input(std::string_view label,
                                            std::span<const std::uint8_t> covered) {
  std::vector<std::uint8_t> out(label.begin(), label.end());
  out.push_back(0);
  out.insert(out.end(), covered.begin(), covered.end());
  return out;
}

const char* path_kind_name(PathKind kind) noexcept {
  switch (kind) {
    case PathKind::host: return "host";
    case PathKind::server_reflexive: return "server-reflexive";
    case PathKind::peer_reflexive: return "peer-reflexive";
    case PathKind::mapped: return "mapped";
    case PathKind::relayed: return "relayed";
  }
  return "host";
}

std::string describe_outcome(const PairReport& report) {
  switch (report.outcome) {
    case PairOutcome::not_tried: return "not tried";
    case PairOutcome::checking: return "checking";
    case PairOutcome::succeeded: return "succeeded";
    case PairOutcome::nominated: return "nominated";
    case PairOutcome::failed:
      if (report.error_code == 0) return "failed: no answer";
      return fmt::format("failed: error {}", report.error_code);
  }
  return "not tried";
}

const char* ice_state_name(IceAgent::State state) noexcept {
  switch (state) {
    case IceAgent::State::waiting: return "waiting";
    case IceAgent::State::checking: return "checking";
    case IceAgent::State::connected: return "connected";
    case IceAgent::State::failed: return "failed";
    case IceAgent::State::disconnected: return "disconnected";
  }
  return "failed";
}

IceAgent::IceAgent(IceAgentConfig config, std::vector<rendezvous::Candidate> local, RandomFn random)
    : config_(std::move(config)), local_(std::move(local)), random_(std::move(random)) {
  auto ok = check_ice_credentials(config_.local_ufrag, config_.local_password);
  if (!ok) {
    fail(ok.error().message);
    return;
  }
  auto key = stun::IntegrityKey::short_term(config_.local_password);
  if (!key) {
    fail(key.error().message);
    return;
  }
  local_key_ = std::move(*key);
}

// --- inputs ---

Status IceAgent::set_remote(std::string ufrag, const std::string& password, Clock::time_point now) {
  auto ok = check_ice_credentials(ufrag, password);
  if (!ok) return ok;
  if (remote_known_ || state_ != State::waiting) return ok_status();
  auto key = stun::IntegrityKey::short_term(password);
  if (!key) return std::move(key).error();
  remote_key_ = std::move(*key);
  remote_ufrag_ = std::move(ufrag);
  remote_known_ = true;
  state_ = State::checking;
  started_ = now;
  next_paced_ = now;
  // RFC 8445 s7.3.1.3, s7.3.1.4: the checks answered while the password was unknown
  // now give their peer-reflexive candidates and triggered checks (a stale session's,
  // with another ufrag, are forgotten).
  std::vector<EarlyCheck> early;
  early.swap(early_);
  for (const EarlyCheck& e : early)
    if (e.remote_ufrag == remote_ufrag_)
      on_peer_check(e.from, e.relayed, e.priority, e.use_candidate, now);
  run(now);
  return ok_status();
}

Status IceAgent::set_remote(std::string ufrag, const std::string& password,
                            std::span<const rendezvous::Candidate> candidates,
                            Clock::time_point now) {
  auto ok = check_ice_credentials(ufrag, password);
  if (!ok) return ok;
  for (const rendezvous::Candidate& c : candidates) add_remote_candidate(c, now);
  return set_remote(std::move(ufrag), password, now);
}

void IceAgent::add_remote_candidate(const rendezvous::Candidate& candidate, Clock::time_point now) {
  if (quiesced_ || state_ == State::failed) return;
  const Endpoint& a = candidate.address;
  if (a.port == 0 || a.ip.is_unspecified() || a.ip.is_multicast()) return;
  if (candidate.transport != stun::kTransportUdp) return;
  if (std::none_of(local_.begin(), local_.end(),
                   [&](const rendezvous::Candidate& l) { return same_family(l.address, a); }))
    return;
  if (auto p = pair_for(a)) {
    // A signalled candidate replaces a peer-reflexive one learned first (the address is
    // then not "learned"), and of two with one address the higher priority counts.
    Remote& r = remotes_[pairs_[*p].remote];
    if (r.learned || candidate.priority > r.priority) {
      r.type = candidate.type;
      r.priority = candidate.priority;
      r.learned = false;
      recompute_priorities();
    }
    return;
  }
  if (remotes_.size() >= kMaxRemotes) return;
  add_remote(a, candidate.type, candidate.priority, false);
  if (remote_known_) run(now);
}

bool IceAgent::on_datagram(std::span<const std::uint8_t> bytes, const Endpoint& from,
                           Clock::time_point now, bool relayed) {
  if (quiesced_ || state_ == State::failed || !local_key_) return false;
  if (bytes.size() > stun::kMaxDatagramSize) return false;
  auto m = stun::decode(bytes);
  if (!m || m->method != stun::method::binding) return false;
  bool peers = false;
  if (m->message_class == stun::MessageClass::request)
    peers = handle_request(*m, bytes, from, relayed, now);
  else if (m->message_class != stun::MessageClass::indication)
    peers = handle_response(*m, bytes, from, relayed, now);
  run(now);
  return peers;
}

std::optional<std::vector<std::uint8_t>> IceAgent::probe_check(const Endpoint& to) {
  if (!remote_key_ || quiesced_ || state_ != State::checking) return std::nullopt;
  auto bytes = encode_check(new_transaction_id(), to, false, false);
  if (bytes) ++probes_;
  return bytes;
}

void IceAgent::on_timer(Clock::time_point now) { run(now); }

std::vector<IceAgent::Outgoing> IceAgent::take_outgoing() {
  std::vector<Outgoing> out;
  out.swap(outgoing_);
  return out;
}

void IceAgent::quiesce() {
  quiesced_ = true;
  outgoing_.clear();
  checks_.clear();
  triggered_.clear();
}

// --- incoming checks (RFC 8445 s7.3) ---

bool IceAgent::handle_request(const stun::Message& m, std::span<const std::uint8_t> bytes,
                              const Endpoint& from, bool relayed, Clock::time_point now) {
  // s7.2.2 and s7.3: a check carries FINGERPRINT, USERNAME "our-ufrag:their-ufrag" and
  // MESSAGE-INTEGRITY under our password. Anything else is not for us, or a forgery: it
  // is dropped without an answer, so a guesser learns nothing.
  if (!m.has_fingerprint || !m.has_message_integrity || !m.username) return false;
  const std::string& user = *m.username;
  const auto colon = user.find(':');
  if (colon == std::string::npos || user.compare(0, colon, config_.local_ufrag) != 0 ||
      colon != config_.local_ufrag.size() || colon + 1 == user.size())
    return false;
  if (!stun::check_integrity(bytes, m, *local_key_)) {
    debug(fmt::format("dropped a check from {}: wrong MESSAGE-INTEGRITY", from.to_string()));
    return false;
  }
  std::string their_ufrag = user.substr(colon + 1);
  if (remote_known_ && their_ufrag != remote_ufrag_) {  // another session's
    debug(fmt::format("dropped a check from {}: USERNAME of another session", from.to_string()));
    return false;
  }
  // Signed checks: whoever read the descriptions can compute MESSAGE-INTEGRITY; only
  // the named peer can sign. Dropped unanswered, like a wrong MESSAGE-INTEGRITY.
  if (signing() && !peer_signed(m, bytes, kIceCheckSignatureLabel)) {
    debug(fmt::format("dropped a check from {}: no valid peer SIGNATURE", from.to_string()));
    return false;
  }
  debug(
      fmt::format("check from {}{}", from.to_string(), m.use_candidate ? " (USE-CANDIDATE)" : ""));

  const std::array<std::uint16_t, 3> ice_attrs{attr::priority, attr::use_candidate,
                                               rendezvous::attr::signature};
  const auto unknown = m.unknown_required_except(std::span(ice_attrs).first(signing() ? 3 : 2));
  if (!unknown.empty()) {  // RFC 8489 s6.3.1
    answer(m, from, relayed, 420, unknown);
    return true;
  }
  if (!m.priority) {  // s7.1.1: PRIORITY is required
    answer(m, from, relayed, 400, {});
    return true;
  }
  // s7.3.1.1: both sides think they have the same role; the larger tie-breaker
  // controls.
  if (config_.controlling && m.ice_controlling) {
    if (config_.tie_breaker >= *m.ice_controlling) {
      answer(m, from, relayed, 487, {});
      return true;
    }
    switch_role(now);
  } else if (!config_.controlling && m.ice_controlled) {
    if (config_.tie_breaker >= *m.ice_controlled) {
      switch_role(now);
    } else {
      answer(m, from, relayed, 487, {});
      return true;
    }
  }
  answer(m, from, relayed, 0, {});
  if (!remote_known_) {
    // Answered at once (the peer may have our description before we have its), acted
    // on once set_remote() says who the peer is.
    auto same = std::find_if(early_.begin(), early_.end(), [&](const EarlyCheck& e) {
      return e.from == from && e.relayed == relayed;
    });
    if (same != early_.end()) {
      same->priority = *m.priority;
      same->use_candidate = same->use_candidate || m.use_candidate;
      same->remote_ufrag = std::move(their_ufrag);
    } else if (early_.size() < kMaxEarlyChecks) {
      early_.push_back({from, relayed, std::move(their_ufrag), *m.priority, m.use_candidate});
    }
    return true;
  }
  on_peer_check(from, relayed, *m.priority, m.use_candidate, now);
  return true;
}

void IceAgent::on_peer_check(const Endpoint& from, bool relayed, std::uint32_t priority,
                             bool use_candidate, Clock::time_point now) {
  // Connected, a check teaches something only while a relayed path looks for a direct
  // one (start_upgrade()), and then only a direct check.
  const bool upgrade = state_ == State::connected && upgrading_ && !relayed;
  if (state_ != State::checking && !upgrade) return;  // answered; nothing more to learn
  auto found = pair_for(from, relayed);
  // s7.3.1.3: an address not among the peer's candidates is a peer-reflexive candidate,
  // with the priority the check carried.
  if (!found && remotes_.size() >= kMaxRemotes) return;
  const std::size_t p = found ? *found
                              : add_remote(from, CandidateType::peer_reflexive, priority, true,
                                           relayed);
  if (!found)
    debug(fmt::format("learned peer-reflexive candidate {}{}", from.to_string(),
                      relayed ? " (via the relay)" : ""));
  if (upgrade && !upgrade_candidate(p)) return;  // the relayed path already runs there
  Pair& pair = pairs_[p];
  // s7.3.1.5: the controlled side takes the nomination. The controlling side sends
  // USE-CANDIDATE only on a pair its own check proved, so this check's arrival (and our
  // answer to it, already queued) completes the path both ways.
  if (use_candidate && !config_.controlling) {
    pair.use_candidate_seen = true;
    // Signed: the signature proves the peer sent this check, not that it sent it from
    // here (it may be a recording replayed from another address). The pair is taken
    // once our own signed check on it is answered with the peer's signature: at once
    // when that already happened, else when the triggered check below succeeds.
    if (!signing() || pair.state == PairState::succeeded) {
      if (upgrade)
        upgrade_to(p, now);
      else
        connect(p, now);
      return;
    }
  }
  // s7.3.1.4: triggered check.
  switch (pair.state) {
    case PairState::succeeded: return;
    case PairState::in_progress: {
      // The peer's packet just came through, so its NAT (and ours) now pass this path:
      // instead of a new transaction, our pending check goes out again now rather than
      // at its next retransmission (once per check).
      for (Check& c : checks_)
        if (c.pair == p && c.kind == CheckKind::ordinary && !c.expedited) {
          c.expedited = true;
          ++pair.checks_sent;
          send_to_pair(p, c.bytes);
          break;
        }
      return;
    }
    case PairState::waiting:
    case PairState::failed:
      pair.state = PairState::waiting;
      pair.error_code = 0;
      if (!pair.queued) {
        pair.queued = true;
        triggered_.push_back(p);
      }
      return;
  }
}

void IceAgent::answer(const stun::Message& request, const Endpoint& from, bool relayed,
                      int error_code, const std::vector<std::uint16_t>& unknown) {
  if (quiesced_) return;
  stun::MessageWriter w(stun::method::binding,
                        error_code == 0 ? stun::MessageClass::success_response
                                        : stun::MessageClass::error_response,
                        request.transaction_id);
  if (error_code == 0) {
    w.add_xor_address(attr::xor_mapped_address, from);  // s7.3.1.2
  } else {
    w.add_error_code(error_code, stun::error_reason(error_code));
    if (!unknown.empty()) {
      std::vector<std::uint8_t> list;
      for (std::uint16_t t : unknown) {
        list.push_back(static_cast<std::uint8_t>(t >> 8));
        list.push_back(static_cast<std::uint8_t>(t & 0xff));
      }
      w.add(attr::unknown_attributes, list);
    }
  }
  if (!add_signature(w, kIceAnswerSignatureLabel)) {
    debug(fmt::format("no answer to {}: signing failed", from.to_string()));
    return;
  }
  w.add_message_integrity(*local_key_);
  auto bytes = w.finish(true);
  if (bytes) outgoing_.push_back({from, std::move(*bytes), relayed});
}

// --- answers to our checks (RFC 8445 s7.2.5) ---

bool IceAgent::handle_response(const stun::Message& m, std::span<const std::uint8_t> bytes,
                               const Endpoint& from, bool relayed, Clock::time_point now) {
  auto it = std::find_if(checks_.begin(), checks_.end(),
                         [&](const Check& c) { return c.id == m.transaction_id; });
  if (it == checks_.end() || !remote_key_) return false;
  const std::size_t p = it->pair;
  // s7.2.5.2.1: the answer must come from where the check went; s7.2.5.1 (and RFC 8489
  // s9.1.4): with MESSAGE-INTEGRITY under the peer's password. Else it is dropped and
  // the check keeps waiting for the real answer.
  if (from != remotes_[pairs_[p].remote].address || relayed != remotes_[pairs_[p].remote].relayed) {
    debug(fmt::format("dropped an answer from {}: the check went to {}", from.to_string(),
                      remotes_[pairs_[p].remote].address.to_string()));
    return false;
  }
  if (!m.has_message_integrity || !stun::check_integrity(bytes, m, *remote_key_)) {
    debug(fmt::format("dropped an answer from {}: wrong MESSAGE-INTEGRITY", from.to_string()));
    return false;
  }
  // Signed: the answer must carry the peer's signature over this transaction's ID (a
  // signed answer to another check, replayed, does not verify).
  if (signing() && !peer_signed(m, bytes, kIceAnswerSignatureLabel)) {
    debug(fmt::format("dropped an answer from {}: no valid peer SIGNATURE", from.to_string()));
    return false;
  }
  const CheckKind kind = it->kind;
  checks_.erase(it);
  Pair& pair = pairs_[p];
  ++pair.answers;

  if (m.message_class == stun::MessageClass::error_response) {
    const int code = m.error_code ? m.error_code->code : 400;
    debug(fmt::format("error {} from {}", code, from.to_string()));
    if (kind == CheckKind::consent) return true;  // consent_until_ is not moved
    if (code == 487 && state_ == State::checking) {
      // s7.2.5.1: the peer says we have its role: take the other one, check again.
      switch_role(now);
      pair.state = PairState::waiting;
      if (!pair.queued) {
        pair.queued = true;
        triggered_.push_back(p);
      }
      return true;
    }
    if (!pair_busy(p) && pair.state != PairState::succeeded) {
      pair.state = PairState::failed;
      pair.error_code = code;
    }
    return true;
  }

  if (kind == CheckKind::consent) {  // RFC 7675 s5.1: consent refreshed
    consent_until_ = now + config_.consent_timeout;
    return true;
  }
  const std::array<std::uint16_t, 1> signature_attr{rendezvous::attr::signature};
  if (!m.unknown_required_except(std::span(signature_attr).first(signing() ? 1 : 0)).empty())
    return true;  // RFC 8489 s6.3.3: not acted on
  if (m.xor_mapped_address) pair.local_seen = *m.xor_mapped_address;
  pair.state = PairState::succeeded;  // s7.2.5.3.2: the pair is valid
  debug(fmt::format("answer from {}: it sees us as {}", from.to_string(),
                    pair.local_seen ? pair.local_seen->to_string() : "?"));
  pair.error_code = 0;
  // Other checks on the pair are done with: it is proven.
  checks_.erase(std::remove_if(checks_.begin(), checks_.end(),
                               [&](const Check& c) {
                                 return c.pair == p && c.kind == CheckKind::ordinary;
                               }),
                checks_.end());
  if (state_ != State::checking) {
    if (state_ == State::connected && upgrading_ && upgrade_candidate(p))
      on_direct_success(p, kind == CheckKind::nomination, now);
    return true;
  }
  if (signing() && !config_.controlling && pair.use_candidate_seen) {
    connect(p, now);  // the nomination that waited for this proof (on_peer_check)
    return true;
  }
  if (kind == CheckKind::nomination) {  // s8.1.1: answered USE-CANDIDATE: selected
    connect(p, now);
    return true;
  }
  if (config_.controlling && std::none_of(checks_.begin(), checks_.end(), [](const Check& c) {
        return c.kind == CheckKind::nomination;
      })) {
    // A relayed pair waits a little for a direct one (which, succeeding, ends the wait:
    // the nomination then picks the best valid pair, the direct one).
    const auto wait = relayed_pair(p) ? std::max(config_.nomination_window, config_.relay_grace)
                                      : config_.nomination_window;
    if (!nominate_at_ || now + wait < *nominate_at_) nominate_at_ = now + wait;
  }
  return true;
}

// --- the clock ---

void IceAgent::run(Clock::time_point now) {
  if (quiesced_ || state_ == State::failed || state_ == State::disconnected) return;
  if (state_ == State::checking && now >= config_.deadline) {
    fail("no candidate pair succeeded before the deadline");
    return;
  }
  if (state_ == State::connected && now >= consent_until_) {
    // RFC 7675 s5.1: no answer for the consent timeout: stop using the path.
    state_ = State::disconnected;
    failure_ = "consent lost: the peer stopped answering";
    debug(failure_);
    checks_.clear();
    return;
  }
  settle_timeouts(now);
  send_due(now);
  if (state_ == State::checking) {
    maybe_nominate(now);
    if (now >= next_paced_) {
      if (auto next = next_check_pair(false)) {
        start_check(*next, CheckKind::ordinary, now);
        next_paced_ = now + config_.pacing;
      }
    }
    if (!config_.keep_checking && !pairs_.empty() && checks_.empty() && triggered_.empty() &&
        !nominate_at_ && std::all_of(pairs_.begin(), pairs_.end(), [](const Pair& p) {
          return p.state == PairState::failed;
        }))
      fail("every candidate pair failed");
  } else if (state_ == State::connected) {
    if (upgrading_) run_upgrade(now);
    if (now >= next_consent_) {
      if (std::none_of(checks_.begin(), checks_.end(),
                       [](const Check& c) { return c.kind == CheckKind::consent; }))
        start_check(*selected_, CheckKind::consent, now);
      next_consent_ = now + consent_jitter();
    }
  }
}

std::optional<std::size_t> IceAgent::next_check_pair(bool direct_only) {
  std::optional<std::size_t> next;
  while (!triggered_.empty() && !next) {  // s6.1.4.2: triggered checks first
    const std::size_t p = triggered_.front();
    triggered_.pop_front();
    pairs_[p].queued = false;
    if (pairs_[p].state == PairState::waiting && (!direct_only || upgrade_candidate(p))) next = p;
  }
  if (!next) {
    for (std::size_t p = 0; p < pairs_.size(); ++p)
      if (pairs_[p].state == PairState::waiting && (!direct_only || upgrade_candidate(p)) &&
          (!next || pairs_[p].priority > pairs_[*next].priority))
        next = p;
  }
  return next;
}

// --- the upgrade of a relayed path ---

void IceAgent::start_upgrade(Clock::time_point now) {
  if (quiesced_ || state_ != State::connected || !selected_ || !relayed_pair(*selected_) ||
      upgrading_ || config_.upgrade_rounds <= 0)
    return;
  upgrading_ = true;
  upgrade_rounds_done_ = 0;
  // The checks before selection just failed on every direct pair: the first round
  // waits one interval for the network to change.
  next_round_ = now + config_.upgrade_interval;
  debug(fmt::format("relayed: a round of checks on the direct pairs every {} ms, at most {}",
                    config_.upgrade_interval.count(), config_.upgrade_rounds));
}

bool IceAgent::upgrade_candidate(std::size_t p) const {
  if (relayed_pair(p)) return false;
  // A peer-reflexive address on a relay's IP is the peer's relay seen from another
  // port, not a direct path.
  const IpAddress& ip = remotes_[pairs_[p].remote].address.ip;
  return std::none_of(remotes_.begin(), remotes_.end(), [&](const Remote& r) {
    return !r.learned && r.type == CandidateType::relayed && r.address.ip == ip;
  });
}

bool IceAgent::proven_direct(const Endpoint& remote) const {
  for (std::size_t p = 0; p < pairs_.size(); ++p)
    if (pairs_[p].state == PairState::succeeded && remotes_[pairs_[p].remote].address == remote &&
        upgrade_candidate(p))
      return true;
  return false;
}

void IceAgent::run_upgrade(Clock::time_point now) {
  if (now >= next_round_ && upgrade_rounds_done_ < config_.upgrade_rounds) {
    ++upgrade_rounds_done_;
    next_round_ = now + config_.upgrade_interval;
    std::size_t armed = 0;
    for (std::size_t p = 0; p < pairs_.size(); ++p)
      if (upgrade_candidate(p) && pairs_[p].state != PairState::succeeded && !pair_busy(p)) {
        pairs_[p].state = PairState::waiting;
        pairs_[p].error_code = 0;
        ++armed;
      }
    debug(fmt::format("upgrade round {} of {}: {} direct pairs", upgrade_rounds_done_,
                      config_.upgrade_rounds, armed));
  }
  if (now >= next_paced_) {
    if (auto next = next_check_pair(true)) {
      start_check(*next, CheckKind::ordinary, now);
      next_paced_ = now + config_.pacing;
    }
  }
  if (upgrade_rounds_done_ >= config_.upgrade_rounds &&
      std::none_of(checks_.begin(), checks_.end(),
                   [](const Check& c) { return c.kind != CheckKind::consent; }) &&
      !next_check_pair(true)) {
    upgrading_ = false;
    triggered_.clear();
    debug(fmt::format("no direct path after {} rounds: the path stays relayed",
                      config_.upgrade_rounds));
  }
}

void IceAgent::on_direct_success(std::size_t p, bool nomination, Clock::time_point now) {
  if (nomination) {  // s8.1.1: our USE-CANDIDATE was answered: both sides use the pair
    upgrade_to(p, now);
    return;
  }
  if (!config_.controlling) {
    // s7.3.1.5, signed: the peer's nomination waited for this proof (on_peer_check).
    if (pairs_[p].use_candidate_seen) upgrade_to(p, now);
    return;
  }
  if (std::none_of(checks_.begin(), checks_.end(),
                   [](const Check& c) { return c.kind == CheckKind::nomination; }))
    start_check(p, CheckKind::nomination, now);  // the first direct pair proven wins
}

void IceAgent::upgrade_to(std::size_t p, Clock::time_point now) {
  debug(fmt::format("upgraded: from the relayed path to {}",
                    remotes_[pairs_[p].remote].address.to_string()));
  upgrading_ = false;
  upgraded_ = true;
  const Clock::time_point first = connected_at_;
  connect(p, now);  // consent now runs on the direct pair
  connected_at_ = first;
}

void IceAgent::settle_timeouts(Clock::time_point now) {
  bool nomination_failed = false;
  std::vector<std::size_t> ended;
  checks_.erase(std::remove_if(checks_.begin(), checks_.end(),
                               [&](const Check& c) {
                                 if (c.sent + 1 < c.schedule.size() ||
                                     now < c.first_sent + c.schedule.back())
                                   return false;
                                 if (c.kind == CheckKind::nomination) nomination_failed = true;
                                 if (c.kind != CheckKind::consent) ended.push_back(c.pair);
                                 return true;
                               }),
                checks_.end());
  for (std::size_t p : ended) {
    Pair& pair = pairs_[p];
    if (pair_busy(p)) continue;
    if (pair.state == PairState::in_progress) pair.state = PairState::failed;
  }
  if (nomination_failed && state_ == State::connected && upgrading_) {
    // The upgrade's nomination went unanswered: the pair is not usable after all; a
    // later round checks it again.
    for (std::size_t p : ended)
      if (pairs_[p].state == PairState::succeeded && !pair_busy(p))
        pairs_[p].state = PairState::failed;
  }
  if (nomination_failed && state_ == State::checking) {
    // s8.1.1: the nominated pair did not answer USE-CANDIDATE: it is no longer valid;
    // nominate another valid one if there is.
    for (std::size_t p : ended)
      if (pairs_[p].state == PairState::succeeded && !pair_busy(p)) {
        pairs_[p].state = PairState::failed;
        pairs_[p].error_code = 0;
      }
    nominate_at_ = now;
  }
}

void IceAgent::send_due(Clock::time_point now) {
  for (Check& c : checks_) {
    if (c.sent + 1 >= c.schedule.size() || now < c.first_sent + c.schedule[c.sent]) continue;
    ++c.sent;
    ++pairs_[c.pair].checks_sent;
    send_to_pair(c.pair, c.bytes);
  }
}

void IceAgent::maybe_nominate(Clock::time_point now) {
  if (!config_.controlling || !nominate_at_ || now < *nominate_at_) return;
  nominate_at_.reset();
  std::optional<std::size_t> best;
  for (std::size_t p = 0; p < pairs_.size(); ++p)
    if (pairs_[p].state == PairState::succeeded &&
        (!best || pairs_[p].priority > pairs_[*best].priority))
      best = p;
  // s8.1.1: a new check with USE-CANDIDATE on the valid pair, sent at once (not paced:
  // it is one packet, and the peer is waiting for it).
  if (best) start_check(*best, CheckKind::nomination, now);
}

std::optional<std::vector<std::uint8_t>> IceAgent::encode_check(const stun::TransactionId& id,
                                                                const Endpoint& remote,
                                                                bool relayed, bool use_candidate) {
  // s7.2.2: USERNAME "their-ufrag:our-ufrag"; s7.1.1: PRIORITY is what a peer-reflexive
  // candidate learned from this check would get (our best candidate's local preference
  // with the peer-reflexive type preference); the role and tie-breaker; USE-CANDIDATE
  // when nominating; MESSAGE-INTEGRITY under their password; FINGERPRINT.
  std::uint32_t local_priority = 0;
  if (auto l = best_local_for(remote, relayed)) local_priority = local_[*l].priority;
  const std::uint32_t priority = ice::candidate_priority(CandidateType::peer_reflexive,
                                                         (local_priority >> 8) & 0xffff,
                                                         256 - (local_priority & 0xff));
  stun::MessageWriter w(stun::method::binding, stun::MessageClass::request, id);
  w.add_text(attr::username, remote_ufrag_ + ":" + config_.local_ufrag);
  w.add_priority(priority);
  w.add_u64(config_.controlling ? attr::ice_controlling : attr::ice_controlled,
            config_.tie_breaker);
  if (use_candidate) w.add_use_candidate();
  const bool signed_ok = add_signature(w, kIceCheckSignatureLabel);
  w.add_message_integrity(*remote_key_);
  auto bytes = w.finish(true);
  if (!bytes || !signed_ok) return std::nullopt;
  return std::move(*bytes);
}

void IceAgent::start_check(std::size_t p, CheckKind kind, Clock::time_point now) {
  Pair& pair = pairs_[p];
  const Remote& remote = remotes_[pair.remote];
  Check c;
  c.pair = p;
  c.kind = kind;
  c.id = new_transaction_id();
  c.schedule = retransmission_schedule(config_.retransmission);
  c.first_sent = now;
  auto bytes = encode_check(c.id, remote.address, remote.relayed, kind == CheckKind::nomination);
  if (!bytes) {  // a signer's failure, or cannot happen with checked credentials;
                 // never leave the pair due
    pair.state = PairState::failed;
    return;
  }
  c.bytes = std::move(*bytes);
  c.sent = 1;
  ++pair.checks_sent;
  if (kind == CheckKind::ordinary && pair.state != PairState::succeeded)
    pair.state = PairState::in_progress;
  debug(fmt::format("{} to {}",
                    kind == CheckKind::nomination ? "nomination (USE-CANDIDATE)"
                    : kind == CheckKind::consent  ? "consent check"
                                                  : "check",
                    remote.address.to_string()));
  send_to_pair(p, c.bytes);
  checks_.push_back(std::move(c));
}

void IceAgent::connect(std::size_t p, Clock::time_point now) {
  selected_ = p;
  state_ = State::connected;
  debug(fmt::format("connected to {}", remotes_[pairs_[p].remote].address.to_string()));
  connected_at_ = now;
  consent_until_ = now + config_.consent_timeout;
  next_consent_ = now + consent_jitter();
  nominate_at_.reset();
  triggered_.clear();
  for (Pair& pair : pairs_) pair.queued = false;
  // s8.1.2: checking ends. A check still out on the selected pair stays: its answer
  // tells the controlled side which of its addresses the peer sees.
  checks_.erase(std::remove_if(checks_.begin(), checks_.end(),
                               [&](const Check& c) { return c.pair != p; }),
                checks_.end());
  if (!pairs_[p].local_seen && !pair_busy(p)) start_check(p, CheckKind::ordinary, now);
}

void IceAgent::fail(std::string why) {
  debug("failed: " + why);
  state_ = State::failed;
  failure_ = std::move(why);
  for (Pair& pair : pairs_)
    if (pair.state == PairState::in_progress) pair.state = PairState::failed;
  checks_.clear();
  triggered_.clear();
  nominate_at_.reset();
}

void IceAgent::switch_role(Clock::time_point now) {
  config_.controlling = !config_.controlling;
  debug(config_.controlling ? "role conflict: now controlling" : "role conflict: now controlled");
  recompute_priorities();
  // Checks in flight carry the old role; a nomination from the old role is withdrawn.
  checks_.erase(std::remove_if(checks_.begin(), checks_.end(),
                               [](const Check& c) { return c.kind == CheckKind::nomination; }),
                checks_.end());
  nominate_at_.reset();
  if (config_.controlling && std::any_of(pairs_.begin(), pairs_.end(), [](const Pair& p) {
        return p.state == PairState::succeeded;
      }))
    nominate_at_ = now + config_.nomination_window;
}

std::optional<Clock::time_point> IceAgent::next_wakeup() const {
  if (quiesced_ || state_ == State::failed || state_ == State::disconnected ||
      state_ == State::waiting)
    return std::nullopt;
  Clock::time_point t = Clock::time_point::max();
  for (const Check& c : checks_)
    t = std::min(t, c.first_sent +
                        (c.sent + 1 < c.schedule.size() ? c.schedule[c.sent] : c.schedule.back()));
  if (state_ == State::checking) {
    t = std::min(t, config_.deadline);
    if (nominate_at_) t = std::min(t, *nominate_at_);
    if (std::any_of(pairs_.begin(), pairs_.end(),
                    [](const Pair& p) { return p.state == PairState::waiting; }))
      t = std::min(t, next_paced_);
  } else {
    t = std::min({t, next_consent_, consent_until_});
    if (upgrading_) {
      if (upgrade_rounds_done_ < config_.upgrade_rounds) t = std::min(t, next_round_);
      for (std::size_t p = 0; p < pairs_.size(); ++p)
        if (pairs_[p].state == PairState::waiting && upgrade_candidate(p))
          t = std::min(t, next_paced_);
    }
  }
  if (t == Clock::time_point::max()) return std::nullopt;
  return t;
}

// --- pairs and candidates ---

std::size_t IceAgent::add_remote(const Endpoint& address, CandidateType type,
                                 std::uint32_t priority, bool learned, bool relayed) {
  remotes_.push_back({address, type, priority, learned, relayed});
  Pair pair;
  pair.remote = remotes_.size() - 1;
  pairs_.push_back(pair);
  recompute_priorities();
  return pairs_.size() - 1;
}

void IceAgent::recompute_priorities() {
  // s6.1.2.3, with the one local candidate that stands for every pair to this address
  // (s6.1.2.4): our best one of the address family.
  for (Pair& pair : pairs_) {
    const Remote& r = remotes_[pair.remote];
    std::uint32_t local = 0;
    if (auto l = best_local_for(r.address, r.relayed)) local = local_[*l].priority;
    pair.priority = config_.controlling ? ice::pair_priority(local, r.priority)
                                        : ice::pair_priority(r.priority, local);
  }
}

std::optional<std::size_t> IceAgent::pair_for(const Endpoint& remote, bool relayed) const {
  for (std::size_t p = 0; p < pairs_.size(); ++p)
    if (remotes_[pairs_[p].remote].address == remote &&
        remotes_[pairs_[p].remote].relayed == relayed)
      return p;
  return std::nullopt;
}

std::optional<std::size_t> IceAgent::best_local_for(const Endpoint& remote, bool relayed) const {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < local_.size(); ++i)
    if (same_family(local_[i].address, remote) &&
        (local_[i].type == CandidateType::relayed) == relayed &&
        (!best || local_[i].priority > local_[*best].priority))
      best = i;
  return best;
}

bool IceAgent::relayed_pair(std::size_t p) const {
  const Remote& r = remotes_[pairs_[p].remote];
  return r.relayed || (!r.learned && r.type == CandidateType::relayed);
}

void IceAgent::send_to_pair(std::size_t p, const std::vector<std::uint8_t>& bytes) {
  const Remote& r = remotes_[pairs_[p].remote];
  outgoing_.push_back({r.address, bytes, r.relayed});
}

std::optional<std::size_t> IceAgent::local_matching(const Endpoint& seen) const {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < local_.size(); ++i)
    if (local_[i].address == seen && (!best || local_[i].priority > local_[*best].priority))
      best = i;
  return best;
}

bool IceAgent::pair_busy(std::size_t p) const {
  return std::any_of(checks_.begin(), checks_.end(),
                     [&](const Check& c) { return c.pair == p && c.kind != CheckKind::consent; });
}

bool IceAgent::add_signature(stun::MessageWriter& w, std::string_view label) const {
  if (!signing()) return true;
  auto sig = config_.sign(ice_signing_input(label, w.covered_by_next(ed25519::kSignatureSize)));
  if (!sig || sig->size() != ed25519::kSignatureSize) return false;
  w.add(rendezvous::attr::signature, *sig);
  return true;
}

bool IceAgent::peer_signed(const stun::Message& m, std::span<const std::uint8_t> bytes,
                           std::string_view label) const {
  // The first SIGNATURE counts, and only before MESSAGE-INTEGRITY (RFC 8489 s14.5:
  // what follows it is not covered by it).
  for (const stun::Attribute& a : m.attributes) {
    if (a.type == attr::message_integrity || a.type == attr::message_integrity_sha256) return false;
    if (a.type != rendezvous::attr::signature) continue;
    if (a.value.size() != ed25519::kSignatureSize) return false;
    auto covered = stun::covered_by(bytes, a);
    if (!covered) return false;
    return config_.verify_peer(ice_signing_input(label, *covered), a.value);
  }
  return false;
}

void IceAgent::debug(const std::string& text) const {
  if (config_.log) config_.log(LogLevel::debug, "ice: " + text);
}

stun::TransactionId IceAgent::new_transaction_id() {
  stun::TransactionId id{};
  if (random_) random_(id);
  return id;
}

Clock::duration IceAgent::consent_jitter() {
  // RFC 7675 s5.1: uniformly within 0.8 to 1.2 times the interval.
  std::array<std::uint8_t, 2> r{};
  if (random_) random_(r);
  const unsigned spread = (static_cast<unsigned>(r[0]) << 8 | r[1]) % 401;  // 0..400
  return config_.consent_interval * (800 + static_cast<int>(spread)) / 1000;
}

// --- results ---

std::optional<SelectedPath> IceAgent::selected() const {
  if (!selected_) return std::nullopt;
  const Pair& pair = pairs_[*selected_];
  const Remote& r = remotes_[pair.remote];
  SelectedPath s;
  s.remote = r.address;
  s.remote_type = r.learned ? CandidateType::peer_reflexive : r.type;
  s.local_seen = pair.local_seen;
  std::optional<CandidateType> local_type;
  if (pair.local_seen) {
    if (auto l = local_matching(*pair.local_seen)) {
      local_type = local_[*l].type;
      s.local = local_[*l].address;
    } else {
      local_type = CandidateType::peer_reflexive;  // s7.2.5.3.1: learned from the answer
      s.local = *pair.local_seen;
    }
    s.local_type = *local_type;
  } else if (auto l = best_local_for(r.address, r.relayed)) {
    s.local = local_[*l].address;
  }
  s.via_relay = r.relayed;
  s.kind = path_kind(s.remote_type, local_type, r.relayed);
  s.elapsed = connected_at_ - started_;
  return s;
}

std::optional<Clock::time_point> IceAgent::linger_until() const {
  if (!selected_) return std::nullopt;
  return connected_at_ + config_.linger;
}

std::vector<PairReport> IceAgent::report() const {
  std::vector<std::size_t> order(pairs_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return pairs_[a].priority > pairs_[b].priority;
  });
  std::vector<PairReport> out;
  for (std::size_t p : order) {
    const Pair& pair = pairs_[p];
    const Remote& r = remotes_[pair.remote];
    PairReport rep;
    rep.remote = r.address;
    rep.remote_type = r.learned ? CandidateType::peer_reflexive : r.type;
    rep.remote_learned = r.learned;
    rep.via_relay = r.relayed;
    if (pair.local_seen) {
      auto l = local_matching(*pair.local_seen);
      rep.local = l ? local_[*l].address : *pair.local_seen;
    } else if (auto l = best_local_for(r.address, r.relayed)) {
      rep.local = local_[*l].address;
    }
    rep.checks_sent = pair.checks_sent;
    rep.answers = pair.answers;
    rep.error_code = pair.error_code;
    if (selected_ && *selected_ == p)
      rep.outcome = PairOutcome::nominated;
    else if (pair.state == PairState::succeeded)
      rep.outcome = PairOutcome::succeeded;
    else if (pair.state == PairState::failed)
      rep.outcome = PairOutcome::failed;
    else
      rep.outcome = pair.checks_sent > 0 ? PairOutcome::checking : PairOutcome::not_tried;
    out.push_back(rep);
  }
  return out;
}

}  // namespace porthole::detail
