//! Basic auth on the metrics listener: `--web-config-file`'s `basic_auth_users`, bcrypt hashes
//! checked as exporter-toolkit checks them.
//!
//! bcrypt is slow on purpose (cost 10 is tens of milliseconds), and the server has one thread:
//! verified credentials are remembered, so a scrape every 15 s costs one bcrypt once. A user
//! that does not exist is checked against a dummy hash of the highest configured cost, so its
//! answer takes as long as the costliest user's.
//!
//! Anyone who reaches the port can send passwords that are not remembered. So that they cannot
//! keep the one thread in bcrypt (and `/healthz`, the kubelet's probe, waiting), a check that is
//! not remembered runs only when the thread has spent at most a fifth of its time since the last
//! one in bcrypt; otherwise the answer is 401 without a check. Only successes are remembered, so
//! wrong passwords never push a scraper's answer out. Costs above `MAX_COST` are refused at
//! start: one check would hold the thread for seconds.

use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::time::Instant;

/// The highest bcrypt cost taken (`htpasswd -B` makes 5, Go's bcrypt 10; 14 is ~16x cost 10).
pub const MAX_COST: u32 = 14;
/// An unremembered check waits until this many times its predecessor's duration has passed
/// since that one ended: bcrypt takes at most 1 / (1 + DUTY) of the thread.
const DUTY: u32 = 4;

/// How many recent answers are remembered (exporter-toolkit keeps 100; a sidecar has a
/// Prometheus or two scraping it).
const CACHE: usize = 16;
/// bcrypt reads at most 72 bytes of the password (and its terminating NUL).
const MAX_KEY: usize = 72;

/// A bcrypt hash: `$2a$`, `$2b$` or `$2y$`, a two-digit cost, then 22 characters of salt and
/// 31 of digest in bcrypt's radix-64 alphabet (`./A-Za-z0-9`). Never printed.
#[derive(Clone, PartialEq)]
pub struct Hash {
    cost: u32,
    salt: [u8; 16],
    digest: [u8; 23],
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("Hash(..)")
    }
}

impl Hash {
    /// The hash in `s`, or None when it is not one (Go's bcrypt takes the same forms, costs 4
    /// to 31). `$2x$`, the variant with the sign-extension bug, is not taken.
    pub fn parse(s: &str) -> Option<Hash> {
        let b = s.as_bytes();
        if b.len() != 60 || b[0] != b'$' || b[1] != b'2' || b[3] != b'$' || b[6] != b'$' {
            return None;
        }
        if !matches!(b[2], b'a' | b'b' | b'y') || !b[4..6].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let cost = u32::from(b[4] - b'0') * 10 + u32::from(b[5] - b'0');
        let (mut salt, mut digest) = (Vec::new(), Vec::new());
        if !(4..=31).contains(&cost)
            || !radix64(&b[7..29], false, &mut salt)
            || !radix64(&b[29..], false, &mut digest)
        {
            return None;
        }
        Some(Hash {
            cost,
            salt: salt.try_into().ok()?,
            digest: digest.try_into().ok()?,
        })
    }

    /// The hash's cost: 2^cost rounds of key expansion.
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Whether `password` hashes to this. Like every bcrypt, only its first 72 bytes count.
    pub fn matches(&self, password: &[u8]) -> bool {
        let mut key = [0u8; MAX_KEY];
        let n = password.len().min(MAX_KEY);
        key[..n].copy_from_slice(&password[..n]);
        let out = bcrypt::bcrypt(self.cost, self.salt, &key[..(n + 1).min(MAX_KEY)]);
        // Every byte compared, whatever the first difference.
        let diff = (0..23).fold(0, |d, i| d | (out[i] ^ self.digest[i]));
        diff == 0
    }
}

/// Decodes radix-64 without padding onto `out`: bcrypt's alphabet (`./A-Za-z0-9`), or with
/// `std` base64's (`A-Za-z0-9+/`). Bits short of a byte at the end are dropped, as Go drops them.
/// Not the `base64` crate's decoder, though the crate is linked for encoding: its engines
/// (`alphabet::BCRYPT` and a lenient standard one) made the binaries 4,288 B (default) and
/// 3,232 B (-tls) larger than these 25 lines, measured with scripts/build-release, and the -tls
/// image has under 5 KB left of its budget.
fn radix64(s: &[u8], std: bool, out: &mut Vec<u8>) -> bool {
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s {
        let alnum = match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            _ => None,
        };
        let v = match (alnum, c, std) {
            (Some(v), _, true) => v,
            (Some(v), _, false) => v + 2,
            (None, b'+', true) | (None, b'.', false) => 62 * u8::from(std),
            (None, b'/', _) => 62 * u8::from(std) + 1,
            _ => return false,
        };
        acc = (acc << 6 | u32::from(v)) & 0xfff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    true
}

/// The users of `basic_auth_users` and the answers given recently.
#[derive(Debug)]
pub struct Users {
    list: Vec<(String, Hash)>,
    /// What a name not in the list is checked against: never matched, as costly as the
    /// costliest user's hash.
    dummy: Hash,
    cache: RefCell<Cache>,
    /// When the next unremembered check may run.
    next_check: Cell<Option<Instant>>,
    /// bcrypt runs so far (for tests).
    checks: Cell<u64>,
}

/// Recent successes: the SHA-256 of the user, the hash's salt and the password; at most
/// `CACHE`, the oldest replaced first. The digest is salted, so a memory dump
/// holds no password and nothing a precomputed table looks up.
#[derive(Debug, Default)]
struct Cache {
    answers: Vec<[u8; 32]>,
    /// Where the next answer goes once it is full.
    next: usize,
}

impl Cache {
    fn has(&self, key: &[u8; 32]) -> bool {
        self.answers.contains(key)
    }

    fn put(&mut self, key: [u8; 32]) {
        if self.answers.len() < CACHE {
            self.answers.push(key);
        } else {
            self.answers[self.next] = key;
            self.next = (self.next + 1) % CACHE;
        }
    }
}

impl Users {
    /// The users, in file order.
    pub fn new(list: Vec<(String, Hash)>) -> Users {
        let cost = list.iter().map(|(_, h)| h.cost).max().unwrap_or(4);
        let dummy = Hash {
            cost,
            salt: *b"hashreload-dummy",
            digest: [0; 23],
        };
        Users {
            list,
            dummy,
            cache: RefCell::default(),
            next_check: Cell::new(None),
            checks: Cell::new(0),
        }
    }

    /// Whether the request head carries `Authorization: Basic` with a user's name and password.
    pub fn allow(&self, head: &[u8]) -> bool {
        self.allow_at(head, Instant::now())
    }

    fn allow_at(&self, head: &[u8], now: Instant) -> bool {
        let Some(credentials) = basic_credentials(head) else {
            return false;
        };
        let (user, password) = match credentials.iter().position(|&b| b == b':') {
            Some(i) => (&credentials[..i], &credentials[i + 1..]),
            None => return false,
        };
        let known = self.list.iter().find(|(name, _)| name.as_bytes() == user);
        let hash = known.map_or(&self.dummy, |(_, h)| h);
        let mut sha = Sha256::new();
        sha.update((user.len() as u64).to_le_bytes());
        sha.update(user);
        sha.update(hash.salt);
        sha.update(password);
        let key: [u8; 32] = sha.finalize().into();
        if self.cache.borrow().has(&key) {
            return true;
        }
        if self.next_check.get().is_some_and(|next| now < next) {
            return false;
        }
        let start = Instant::now();
        let ok = hash.matches(password) && known.is_some();
        self.checks.set(self.checks.get() + 1);
        let took = start.elapsed();
        self.next_check.set(Some(now + took + took * DUTY));
        if ok {
            self.cache.borrow_mut().put(key);
        }
        ok
    }
}

/// The decoded `user:password` of the first `Authorization` header of a request head, if it is
/// `Basic` (any case) and padded base64, as Go's `Request.BasicAuth` reads it.
#[doc(hidden)] // for the fuzz target
pub fn basic_credentials(head: &[u8]) -> Option<Vec<u8>> {
    let value = head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let i = line.iter().position(|&b| b == b':')?;
        line[..i]
            .eq_ignore_ascii_case(b"authorization")
            .then(|| line[i + 1..].trim_ascii())
    })?;
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let data = encoded.strip_suffix(b"==").or(encoded.strip_suffix(b"="));
    let data = data.unwrap_or(encoded);
    let mut out = Vec::new();
    let ok = encoded.len() % 4 == 0 && data.len() % 4 != 1 && radix64(data, true, &mut out);
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // Made with apache2-utils' htpasswd (its own bcrypt, not the crate's):
    // `htpasswd -nbBC 4 alice wonderland`, `-C 5 bob 'b0b:with:colons'`,
    // `-C 10 prom scrape-secret`, `-C 4 carol 'päss wörd é'`.
    pub const ALICE: &str = "$2y$04$bFxPnHhtrdqdvRPFvgJ/Xuq9daAaQzq3dDdgJy3BboprdYOmqGdiy";
    pub const BOB: &str = "$2y$05$TR4TAIPShKp3tDkRfOWp9e/E4daxbZZPB3Go5g2Y6.Hj.wl.LHifi";
    pub const PROM: &str = "$2y$10$zlBU4484nz5OzKeO/7wTQ.s03gNFNb6bOjy1j6DHRHwmeU.6zrmRC";
    pub const CAROL: &str = "$2y$04$OiJzd9fjzattNEY/hAxAd.23teXKFW0LwLxUbaDWGL76lqIFBRLHe";
    /// exporter-toolkit's dummy, bcrypt of "fakepassword".
    const FAKE: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
    /// `htpasswd -nbBC 4 long` of 72 `a` and then `bcd`.
    const LONG: &str = "$2y$04$kEZ7iPuOSoNyXDa8ebwqweWRADBzI1EXWdJWiJVH0/bfSyZWcqyxG";

    fn hash(s: &str) -> Hash {
        Hash::parse(s).unwrap_or_else(|| panic!("{s}"))
    }

    fn head(user: &str, password: &str) -> Vec<u8> {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {b}\r\n\r\n").into_bytes()
    }

    #[test]
    fn htpasswd_hashes_verify_their_password_and_no_other() {
        for (h, good) in [
            (ALICE, "wonderland"),
            (BOB, "b0b:with:colons"),
            (PROM, "scrape-secret"),
            (CAROL, "päss wörd é"),
            (FAKE, "fakepassword"),
        ] {
            assert!(hash(h).matches(good.as_bytes()), "{h}");
            assert!(!hash(h).matches(b"wrong"), "{h}");
            assert!(!hash(h).matches(&good.as_bytes()[1..]), "{h}");
            assert!(!hash(h).matches(b""), "{h}");
        }
        // $2a$ and $2b$ compute the same for these passwords.
        for v in ["$2a$", "$2b$"] {
            let h = format!("{v}{}", &ALICE[4..]);
            assert!(hash(&h).matches(b"wonderland"));
        }
        // bcrypt reads 72 bytes.
        let long = "a".repeat(72);
        assert!(hash(LONG).matches(format!("{long}bcd").as_bytes()));
        assert!(hash(LONG).matches(format!("{long}xyz").as_bytes()));
        assert!(!hash(LONG).matches(&long.as_bytes()[..71]));
    }

    #[test]
    fn only_bcrypt_hashes_parse() {
        assert_eq!(hash(PROM).cost(), 10);
        let bad = [
            "",
            "wonderland",
            &ALICE[..59],
            &format!("{ALICE}x"),
            &format!("$2x${}", &ALICE[4..]),
            &format!("$1a${}", &ALICE[4..]),
            &format!("$2y$03{}", &ALICE[6..]),
            &format!("$2y$32{}", &ALICE[6..]),
            &format!("$2y$1a{}", &ALICE[6..]),
            &format!("$2y$04${}", &ALICE[7..].replace('b', "+")),
            &format!("$2y$04$_{}", &ALICE[8..]),
            &format!("{}é", &ALICE[..58]),
        ];
        for s in bad {
            assert!(Hash::parse(s).is_none(), "{s}");
        }
        assert_eq!(format!("{:?}", hash(ALICE)), "Hash(..)");
    }

    #[test]
    fn credentials_are_read_as_go_reads_them() {
        let users = Users::new(vec![
            ("alice".into(), hash(ALICE)),
            ("bob".into(), hash(BOB)),
        ]);
        // Each check an hour after the last, beyond any pacing.
        let at = Cell::new(Instant::now());
        let allow = |h: &[u8]| {
            at.set(at.get() + Duration::from_secs(3600));
            users.allow_at(h, at.get())
        };
        assert!(allow(&head("alice", "wonderland")));
        // The password is everything after the first colon.
        assert!(allow(&head("bob", "b0b:with:colons")));
        let cases = [
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nauthorization: basic YWxpY2U6d29uZGVybGFuZA==\r\n\r\n",
            "GET / HTTP/1.1\r\nAUTHORIZATION:   BASIC YWxpY2U6d29uZGVybGFuZA==  \r\n\r\n",
            "GET / HTTP/1.1\r\nAuthorization: Bearer YWxpY2U6d29uZGVybGFuZA==\r\n\r\n",
            "GET / HTTP/1.1\r\nAuthorization: Basic YWxpY2U6d29uZGVybGFuZA\r\n\r\n",
            "GET / HTTP/1.1\r\nAuthorization: Basic  YWxpY2U6d29uZGVybGFuZA==\r\n\r\n",
            "GET / HTTP/1.1\r\nAuthorization: Basic YWxpY2Uwd29uZGVybGFuZA==\r\n\r\n",
            "GET / HTTP/1.1\r\nAuthorization: Basic\r\n\r\n",
            "GET / HTTP/1.1\r\nX-Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n\r\n",
            // The first header counts.
            "GET / HTTP/1.1\r\nAuthorization: Basic eDp5\r\n\
             Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n\r\n",
        ];
        let want = [
            false, true, true, false, false, false, false, false, false, false,
        ];
        for (req, want) in cases.iter().zip(want) {
            assert_eq!(allow(req.as_bytes()), want, "{req:?}");
        }
    }

    #[test]
    fn successes_are_remembered_and_every_other_answer_costs_a_check() {
        let users = Users::new(vec![
            ("prom".into(), hash(PROM)),
            ("alice".into(), hash(ALICE)),
        ]);
        // Far enough apart that the pacing below never holds a check back.
        let mut at = Instant::now();
        let mut allow = |h: &[u8]| {
            at += Duration::from_secs(3600);
            users.allow_at(h, at)
        };
        assert!(allow(&head("prom", "scrape-secret")));
        assert_eq!(users.checks.get(), 1);
        assert!(allow(&head("prom", "scrape-secret")));
        assert_eq!(
            users.checks.get(),
            1,
            "a remembered success costs no bcrypt"
        );
        // A wrong password, a known user's password under another name, an unknown user (the
        // dummy hash): all refused, each after a check, every time.
        for (user, password) in [
            ("prom", "wrong"),
            ("alice", "scrape-secret"),
            ("mallory", "scrape-secret"),
        ] {
            let before = users.checks.get();
            assert!(!allow(&head(user, password)), "{user}");
            assert!(!allow(&head(user, password)), "{user}");
            assert_eq!(users.checks.get(), before + 2, "{user}");
        }
        assert_eq!(users.dummy.cost, 10);
        // Wrong passwords never push a success out; successes are bounded, oldest out first.
        for i in 0..2 * CACHE {
            assert!(!allow(&head("prom", &i.to_string())));
        }
        assert_eq!(users.cache.borrow().answers.len(), 1);
        assert!(allow(&head("alice", "wonderland")));
        assert_eq!(users.cache.borrow().answers.len(), 2);
    }

    #[test]
    fn unremembered_checks_are_paced_so_the_thread_stays_free() {
        let users = Users::new(vec![("prom".into(), hash(PROM))]);
        let t0 = Instant::now();
        assert!(!users.allow_at(&head("prom", "guess-1"), t0));
        assert_eq!(users.checks.get(), 1);
        // Straight after: refused without a check, even the right password.
        assert!(!users.allow_at(&head("prom", "scrape-secret"), t0));
        assert_eq!(users.checks.get(), 1);
        // Once the thread has spent a fifth of its time in bcrypt at most, the next one runs.
        let later = users.next_check.get().unwrap();
        assert!(later > t0);
        assert!(users.allow_at(&head("prom", "scrape-secret"), later));
        assert_eq!(users.checks.get(), 2);
        // A remembered success is never held back.
        assert!(users.allow_at(&head("prom", "scrape-secret"), later));
        assert_eq!(users.checks.get(), 2);
    }

    #[test]
    fn the_cache_holds_no_password() {
        let users = Users::new(vec![("alice".into(), hash(ALICE))]);
        assert!(users.allow(&head("alice", "wonderland")));
        let cache = users.cache.borrow();
        let key = cache.answers[0];
        assert!(!key.windows(4).any(|w| w == b"wond"));
        assert_ne!(key, <[u8; 32]>::from(Sha256::digest(b"wonderland")));
    }
}
