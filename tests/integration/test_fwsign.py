"""tools/fwsign: MCUboot-format signed images (issue 10).

fwsign is a host program, so these tests run it directly (no sim):
  - MCUboot's own imgtool vectors (tests/data/mcuboot/) verify, and their
    `info` shows what `imgtool dumpinfo` does;
  - keygen -> sign -> verify; getpub's C array compiles and is the key's DER;
  - fwsign's images checked independently, the way `imgtool verify` does
    (header, TLV areas, SHA-256, KEYHASH, ECDSA with Python's
    `cryptography`), and images made in Python verify with fwsign;
  - any single changed byte, a removed byte or a truncation is refused;
  - 1,000 signatures with fresh keys all verify (short DER signatures
    included: their length is not padded).

Runs on Debian's /usr/bin/python3 with python3-cryptography.
"""
import collections
import concurrent.futures
import hashlib
import os
import random
import shutil
import stat
import struct
import subprocess
import tempfile
import time
import unittest

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                              encode_dss_signature)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SHR_BUILD_DIR", os.path.join(REPO, "build"))
FWSIGN = os.path.join(BUILD, "tools", "fwsign", "fwsign")
DATA = os.path.join(REPO, "tests", "data", "mcuboot")
VEC_KEY = os.path.join(DATA, "vector-p256.pem")
VEC_PUB = os.path.join(DATA, "vector-p256.pub.pem")
VEC_SC7 = os.path.join(DATA, "imgtool-3.1.4+15-sc7.bin")
VEC_PADDED = os.path.join(DATA, "imgtool-0.9.0-padded.bin")
VEC_SC7_DIGEST = "103f4575c16a2124e606292698cf6d3bdf84feffd03a166a5088096db61ab908"

IMAGE_MAGIC = 0x96F3B83D
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
TLV_KEYHASH, TLV_SHA256, TLV_ECDSA_SIG, TLV_SEC_CNT, TLV_BOARD = 0x01, 0x10, 0x22, 0x50, 0xA0

WORKERS = max(2, os.cpu_count() or 2)


def run(*args):
    return subprocess.run([FWSIGN, *args], capture_output=True, text=True, timeout=60)


def pub_der(pem_path):
    """SubjectPublicKeyInfo DER of a private or public PEM, by `cryptography`."""
    with open(pem_path, "rb") as f:
        pem = f.read()
    try:
        key = serialization.load_pem_private_key(pem, password=None).public_key()
    except ValueError:
        key = serialization.load_pem_public_key(pem)
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_image(data):
    """The image's structure, checked the way `imgtool verify` walks it.
    Raises AssertionError (via ValueError) on anything malformed."""
    if len(data) < 32:
        raise ValueError("short header")
    (magic, load_addr, hdr_size, prot_size, img_size, flags, major, minor, rev, build,
     pad1) = struct.unpack_from("<IIHHIIBBHII", data, 0)
    if magic != IMAGE_MAGIC:
        raise ValueError("bad magic")
    img = dict(load_addr=load_addr, hdr_size=hdr_size, prot_size=prot_size,
               img_size=img_size, flags=flags, version=(major, minor, rev, build),
               pad1=pad1, prot=[], tlvs=[])

    def walk(off, want_magic, out):
        if off + 4 > len(data):
            raise ValueError("TLV info past the end")
        magic, tot = struct.unpack_from("<HH", data, off)
        if magic != want_magic:
            raise ValueError("bad TLV info magic 0x%04x at 0x%x" % (magic, off))
        end = off + tot
        if end > len(data):
            raise ValueError("TLV area past the end")
        at = off + 4
        while at < end:
            if end - at < 4:
                raise ValueError("partial TLV header")
            typ, ln = struct.unpack_from("<HH", data, at)
            if at + 4 + ln > end:
                raise ValueError("TLV past its area")
            out.append((typ, data[at + 4:at + 4 + ln]))
            at += 4 + ln
        return end

    off = hdr_size + img_size
    if prot_size:
        if walk(off, TLV_PROT_INFO_MAGIC, img["prot"]) != off + prot_size:
            raise ValueError("protected area total differs from the header")
    hashed = off + prot_size
    img["hashed_len"] = hashed
    img["end"] = walk(hashed, TLV_INFO_MAGIC, img["tlvs"])
    return img


def imgtool_verify(data, pub_pem_path):
    """What `imgtool verify` checks: digest, key hash, signature. Returns the
    parsed image; raises on any failure."""
    img = parse_image(data)
    der = pub_der(pub_pem_path)
    key = serialization.load_der_public_key(der)
    tlvs = dict(img["tlvs"])
    digest = hashlib.sha256(data[:img["hashed_len"]]).digest()
    if tlvs.get(TLV_SHA256) != digest:
        raise ValueError("digest mismatch")
    if tlvs.get(TLV_KEYHASH) != hashlib.sha256(der).digest():
        raise ValueError("key hash mismatch")
    key.verify(tlvs[TLV_ECDSA_SIG], data[:img["hashed_len"]], ec.ECDSA(hashes.SHA256()))
    return img


def der_len(sig):
    """Length of a DER SEQUENCE (short form), from its own header."""
    assert sig[0] == 0x30 and sig[1] < 0x80, sig.hex()
    return 2 + sig[1]


def build_image(payload, key, version=(1, 0, 0, 0), hdr_size=0x200, prot=(), sig=None):
    """An image made here, independently of fwsign (sig: a function from the
    hashed bytes to a DER signature)."""
    prot_area = b""
    if prot:
        body = b"".join(struct.pack("<HH", t, len(v)) + v for t, v in prot)
        prot_area = struct.pack("<HH", TLV_PROT_INFO_MAGIC, 4 + len(body)) + body
    hdr = struct.pack("<IIHHIIBBHII", IMAGE_MAGIC, 0, hdr_size, len(prot_area), len(payload), 0,
                      *version, 0)
    hashed = hdr + bytes(hdr_size - len(hdr)) + payload + prot_area
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    s = sig(hashed) if sig else key.sign(hashed, ec.ECDSA(hashes.SHA256()))
    tlvs = [(TLV_SHA256, hashlib.sha256(hashed).digest()),
            (TLV_KEYHASH, hashlib.sha256(der).digest()), (TLV_ECDSA_SIG, s)]
    body = b"".join(struct.pack("<HH", t, len(v)) + v for t, v in tlvs)
    return hashed + struct.pack("<HH", TLV_INFO_MAGIC, 4 + len(body)) + body


class FwsignCase(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.access(FWSIGN, os.X_OK), "build fwsign first: %s" % FWSIGN)
        self.dir = tempfile.mkdtemp(prefix="fwsign-")
        self.addCleanup(shutil.rmtree, self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def ok(self, *args):
        r = run(*args)
        self.assertEqual((r.returncode, r.stderr), (0, ""), "fwsign %s" % " ".join(args))
        return r.stdout

    def fails(self, *args, match=None):
        """fwsign fails with exactly one `error: ` line on stderr."""
        r = run(*args)
        self.assertNotEqual(r.returncode, 0, "fwsign %s succeeded" % " ".join(args))
        self.assertGreater(r.returncode, 0, "fwsign %s died on a signal" % " ".join(args))
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("error: "), r.stderr)
        self.assertTrue(r.stderr.endswith("\n"))
        if match:
            self.assertRegex(lines[0], match)
        return lines[0]

    def keygen(self, name="key.pem"):
        p = self.path(name)
        self.ok("keygen", p)
        return p

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def read(self, p):
        with open(p, "rb") as f:
            return f.read()


class VectorTest(FwsignCase):
    """(a) MCUboot's imgtool vectors."""

    def test_vectors_verify(self):
        self.assertEqual(self.ok("verify", "--key", VEC_PUB, VEC_SC7),
                         "ok: 3.1.4+15 65536 bytes\n")
        self.assertEqual(self.ok("verify", "--key", VEC_PUB, VEC_PADDED),
                         "ok: 0.9.0+0 65536 bytes\n")
        # The private PEM names the same public key.
        self.ok("verify", "--key", VEC_KEY, VEC_SC7)
        self.ok("verify", "--key", VEC_PUB, "--min-security-counter", "7", VEC_SC7)
        # And our independent reading of them agrees.
        for v in (VEC_SC7, VEC_PADDED):
            imgtool_verify(self.read(v), VEC_PUB)

    def test_info_sc7(self):
        out = self.ok("info", VEC_SC7)
        lines = out.splitlines()
        self.assertIn("version: 3.1.4+15", lines)
        self.assertIn("hdr_size: 0x200", lines)
        self.assertIn("protected_tlv_size: 0xc", lines)
        self.assertIn("img_size: 0x10000 (65536)", lines)
        self.assertIn("  tlv SEC_CNT (0x50) len 4: 7", lines)
        self.assertIn("  tlv SHA256 (0x10) len 32: " + VEC_SC7_DIGEST, lines)
        self.assertIn("digest: %s (matches the SHA256 TLV)" % VEC_SC7_DIGEST, lines)
        self.assertIn("image_end: 0x102a3 (0 bytes after it)", lines)

    def test_info_padded(self):
        out = self.ok("info", VEC_PADDED)
        self.assertIn("version: 0.9.0+0", out.splitlines())
        self.assertNotIn("SEC_CNT", out)
        self.assertRegex(out, r"image_end: 0x[0-9a-f]+ \(\d+ bytes after it\)")

    def test_vectors_policy_refusals(self):
        self.fails("verify", "--key", VEC_PUB, "--min-security-counter", "8", VEC_SC7,
                   match=r"security counter 7 is below the minimum 8")
        # No counter counts as 0.
        self.fails("verify", "--key", VEC_PUB, "--min-security-counter", "1", VEC_PADDED,
                   match=r"security counter 0 is below")
        # imgtool's images name no board.
        self.fails("verify", "--key", VEC_PUB, "--board", "posix", VEC_SC7,
                   match=r"built for board '\(none\)', not 'posix'")

    def test_foreign_key_refused(self):
        key = self.keygen()
        for v in (VEC_SC7, VEC_PADDED):
            self.fails("verify", "--key", key, v, match=r"another key")

    def test_getpub_of_vector_key(self):
        der = pub_der(VEC_PUB)
        out = self.ok("getpub", VEC_PUB)
        self.assertEqual(out, self.ok("getpub", VEC_KEY))
        # The vectors' KEYHASH is the SHA-256 of this DER.
        self.assertEqual(dict(parse_image(self.read(VEC_SC7))["tlvs"])[TLV_KEYHASH],
                         hashlib.sha256(der).digest())
        self.assertIn(hashlib.sha256(der).hexdigest(), out)


class SignTest(FwsignCase):
    """(b) keygen, getpub, sign, verify; (c) the image checked independently."""

    def test_keygen_mode_and_no_overwrite(self):
        old = os.umask(0)  # fwsign must not rely on the caller's umask
        try:
            key = self.keygen()
        finally:
            os.umask(old)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        pem = self.read(key)
        self.assertTrue(pem.startswith(b"-----BEGIN "), pem[:40])
        priv = serialization.load_pem_private_key(pem, password=None)
        self.assertIsInstance(priv.curve, ec.SECP256R1)
        self.fails("keygen", key, match=r"File exists")
        self.assertEqual(self.read(key), pem)
        # Not through a symlink either (O_EXCL).
        os.symlink(self.path("elsewhere.pem"), self.path("link.pem"))
        self.fails("keygen", self.path("link.pem"))
        self.assertFalse(os.path.exists(self.path("elsewhere.pem")))
        self.fails("keygen", self.path("no/such/dir/key.pem"))
        # Two keys differ.
        self.assertNotEqual(pub_der(key), pub_der(self.keygen("second.pem")))

    def test_getpub_compiles_and_is_the_der(self):
        key = self.keygen()
        der = pub_der(key)
        out = self.ok("getpub", key)
        self.assertIn("static const unsigned char fwsign_pubkey[] = {", out)
        self.assertIn("static const unsigned int fwsign_pubkey_len = %d;" % len(der), out)
        with open(self.path("pubkey.h"), "w") as f:
            f.write(out)
        with open(self.path("dump.c"), "w") as f:
            f.write('#include <stdio.h>\n#include "pubkey.h"\n'
                    "int main(void)\n{\n"
                    "    return fwrite(fwsign_pubkey, 1, fwsign_pubkey_len, stdout)"
                    " == sizeof fwsign_pubkey ? 0 : 1;\n}\n")
        cc = ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"]
        subprocess.run(cc + ["-c", self.path("dump.c"), "-o", self.path("dump.o")],
                       check=True, cwd=self.dir)
        subprocess.run(cc + [self.path("dump.o"), "-o", self.path("dump")], check=True)
        dumped = subprocess.run([self.path("dump")], capture_output=True, check=True).stdout
        self.assertEqual(dumped, der)
        # The public PEM gives the same array.
        pub = self.write("pub.pem", serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.assertEqual(self.ok("getpub", pub), out)

    def test_sign_verify_and_structure(self):
        key = self.keygen()
        pub = self.write("pub.pem", serialization.load_der_public_key(pub_der(key)).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        payload = b"\x7fELF" + os.urandom(5000)
        src = self.write("fw.elf", payload)
        out = self.path("fw.img")
        self.assertEqual(self.ok("sign", "--key", key, "--version", "1.2.3+4", "--board", "posix",
                                 "--security-counter", "3", src, out), "")
        self.assertEqual(self.ok("verify", "--key", pub, "--board", "posix",
                                 "--min-security-counter", "3", out),
                         "ok: 1.2.3+4 5004 bytes\n")
        self.ok("verify", "--key", key, out)
        self.fails("verify", "--key", pub, "--min-security-counter", "4", out, match=r"downgrade")
        self.fails("verify", "--key", pub, "--board", "posi", out, match=r"board 'posix'")
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o666 & ~current_umask())
        self.assertEqual([n for n in os.listdir(self.dir) if ".tmp." in n], [])

        # (c) the structure, field by field, and `imgtool verify`'s checks.
        data = self.read(out)
        img = imgtool_verify(data, pub)
        self.assertEqual((img["load_addr"], img["hdr_size"], img["img_size"], img["flags"],
                          img["version"], img["pad1"]), (0, 0x200, len(payload), 0, (1, 2, 3, 4), 0))
        self.assertEqual(data[32:0x200], bytes(0x200 - 32))
        self.assertEqual(data[0x200:0x200 + len(payload)], payload)
        self.assertEqual(img["prot"], [(TLV_SEC_CNT, struct.pack("<I", 3)), (TLV_BOARD, b"posix")])
        self.assertEqual(img["prot_size"], 4 + 8 + 9)
        self.assertEqual([t for t, _ in img["tlvs"]], [TLV_SHA256, TLV_KEYHASH, TLV_ECDSA_SIG])
        sig = dict(img["tlvs"])[TLV_ECDSA_SIG]
        self.assertEqual(len(sig), der_len(sig), "signature padded: " + sig.hex())
        self.assertEqual(encode_dss_signature(*decode_dss_signature(sig)), sig)  # canonical DER
        self.assertEqual(img["end"], len(data))  # nothing after the TLV area

        info = self.ok("info", out)
        self.assertIn('  tlv BOARD (0xa0) len 5: "posix"', info.splitlines())
        self.assertIn("  tlv SEC_CNT (0x50) len 4: 3", info.splitlines())

    def test_sign_minimal_options(self):
        key = self.keygen()
        src = self.write("p.bin", b"")  # an empty payload is still an image
        out = self.path("o.img")
        self.ok("sign", "--key", key, "--version", "7", "--header-size", "32", src, out)
        self.assertEqual(self.ok("verify", "--key", key, out), "ok: 7.0.0+0 0 bytes\n")
        img = imgtool_verify(self.read(out), key)
        self.assertEqual((img["hdr_size"], img["prot_size"], img["prot"]), (32, 0, []))
        # --key=VALUE form, options after the positionals, signing over an existing file.
        self.write("p.bin", b"x" * 100)
        self.ok("sign", src, out, "--version=255.255.65535+4294967295", "--key=" + key)
        self.assertEqual(self.ok("verify", "--key", key, out),
                         "ok: 255.255.65535+4294967295 100 bytes\n")

    def test_python_made_images_verify(self):
        """Images built here (not by fwsign), one with a short DER signature
        (< 70 bytes), must pass fwsign verify: the parser takes any natural
        DER length."""
        priv = ec.generate_private_key(ec.SECP256R1())
        key = self.write("py.pem", priv.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        payload = os.urandom(3000)
        prot = [(TLV_SEC_CNT, struct.pack("<I", 9)), (TLV_BOARD, b"posix")]
        self.assertEqual(self.ok("verify", "--key", key, "--board", "posix",
                                 self.write("a.img", build_image(payload, priv, (2, 0, 1, 0), prot=prot))),
                         "ok: 2.0.1+0 3000 bytes\n")

        # A short signature: r or s below 2^247 (about 1 in 256 signatures).
        def short_sig(hashed):
            for _ in range(100000):
                s = priv.sign(hashed, ec.ECDSA(hashes.SHA256()))
                if len(s) < 70:
                    return s
            self.fail("no short signature in 100000 tries")

        data = build_image(payload, priv, prot=prot, sig=short_sig)
        sig = dict(parse_image(data)["tlvs"])[TLV_ECDSA_SIG]
        print("python-made short signature: %d bytes" % len(sig))
        self.assertLess(len(sig), 70)
        self.ok("verify", "--key", key, self.write("short.img", data))
        # ...and imgtool's habit of zero-padding it to 72 bytes is accepted too.
        padded = build_image(payload, priv, prot=prot,
                             sig=lambda h: short_sig(h).ljust(72, b"\0"))
        self.ok("verify", "--key", key, self.write("zpad.img", padded))

    def test_usage_errors(self):
        key = self.keygen()
        src = self.write("p.bin", b"payload")
        out = self.path("o.img")
        cases = [
            (), ("frobnicate",), ("keygen",), ("getpub",), ("info",),
            ("sign", "--key", key, src, out),                        # no --version
            ("sign", "--version", "1.0.0", src, out),                 # no --key
            ("sign", "--key", key, "--version", "1.2.3.4", src, out),
            ("sign", "--key", key, "--version", "256.0.0", src, out),
            ("sign", "--key", key, "--version", "1.0.0", "--header-size", "0x10", src, out),
            ("sign", "--key", key, "--version", "1.0.0", "--header-size", "0x10000", src, out),
            ("sign", "--key", key, "--version", "1.0.0", "--board", "two words", src, out),
            ("sign", "--key", key, "--version", "1.0.0", "--board", "x" * 32, src, out),
            ("sign", "--key", key, "--version", "1.0.0", "--security-counter", "-1", src, out),
            ("sign", "--key", key, "--version", "1.0.0", "--security-counter", "4294967296",
             src, out),
            ("sign", "--key", key, "--version", "1.0.0", "--pad-to", "16", src, out),
            ("sign", "--key", key, "--version", "1.0.0", "--bogus", src, out),
            ("sign", "--key", key, "--key", key, "--version", "1.0.0", src, out),
            ("sign", "--key", key, "--version", "1.0.0", src),
            ("sign", "--key", key, "--version", "1.0.0", src, out, "extra"),
            ("sign", "--key", key, "--version", "1.0.0", self.path("missing"), out),
            ("sign", "--key", VEC_PUB, "--version", "1.0.0", src, out),  # a public key
            ("sign", "--key", src, "--version", "1.0.0", src, out),      # not a key
            ("verify", "--key", key),
            ("verify", src),
            ("verify", "--key", key, src),                                # not an image
            ("verify", "--key", key, "--min-security-counter", "x", src),
            ("info", src, src),
        ]
        for args in cases:
            with self.subTest(args=args):
                self.fails(*args)
        self.assertFalse(os.path.exists(out))
        self.assertEqual(sorted(os.listdir(self.dir)), ["key.pem", "p.bin"])
        self.assertEqual(run("help").returncode, 0)


def current_umask():
    old = os.umask(0)
    os.umask(old)
    return old


class TamperTest(FwsignCase):
    """(d) every changed byte, removed byte and truncation is refused."""

    def setUp(self):
        super().setUp()
        self.key = self.keygen()
        src = self.write("p.bin", os.urandom(300))
        self.img_path = self.path("o.img")
        self.ok("sign", "--key", self.key, "--version", "1.0.0+1", "--security-counter", "2",
                "--board", "posix", src, self.img_path)
        self.data = self.read(self.img_path)
        self.img = parse_image(self.data)

    def verify_all(self, variants):
        """Run fwsign verify on each (label, bytes); returns the labels that passed."""
        paths = []
        for i, (label, data) in enumerate(variants):
            paths.append((label, self.write("v%05d.img" % i, data)))

        def one(lp):
            r = run("verify", "--key", self.key, "--board", "posix", lp[1])
            if r.returncode == 0:
                return lp[0]
            if r.returncode < 0 or len(r.stderr.splitlines()) != 1 or \
                    not r.stderr.startswith("error: "):
                return "%s (bad failure: rc %d, %r)" % (lp[0], r.returncode, r.stderr)
            return None

        with concurrent.futures.ThreadPoolExecutor(WORKERS) as ex:
            return [x for x in ex.map(one, paths) if x]

    def test_every_byte_flip_fails(self):
        t0 = time.monotonic()
        # One change per byte, the low bit, the high bit, all bits or a
        # random pattern in turn: 4 x faster than all four for every byte.
        rnd = random.Random(1)
        variants = []
        for i in range(len(self.data)):
            mask = (0x01, 0x80, 0xFF, rnd.randrange(1, 256))[i % 4]
            b = bytearray(self.data)
            b[i] ^= mask
            variants.append(("byte 0x%x ^ 0x%02x" % (i, mask), bytes(b)))
        self.assertEqual(self.verify_all(variants), [])
        print("%d changed bytes over the whole %d-byte image (hashed region 0x%x, then the "
              "TLVs and signature) all refused in %.1f s"
              % (len(variants), len(self.data), self.img["hashed_len"], time.monotonic() - t0))

    def test_removed_byte_and_truncation_fail(self):
        hashed = self.img["hashed_len"]
        sig_at = len(self.data) - len(dict(self.img["tlvs"])[TLV_ECDSA_SIG])
        points = sorted({0, 4, 8, 20, 31, 32, 0x100, 0x1ff, 0x200, 0x280, hashed - 10,
                         hashed - 1, hashed, hashed + 2, hashed + 4, hashed + 40,
                         sig_at, sig_at + 5, len(self.data) - 1})
        variants = [("byte 0x%x removed" % i, self.data[:i] + self.data[i + 1:]) for i in points]
        variants += [("cut to 0x%x" % i, self.data[:i]) for i in points]
        self.assertEqual(self.verify_all(variants), [])

    def test_padding_still_verifies(self):
        src = self.write("p2.bin", os.urandom(1000))
        out = self.path("pad.img")
        self.ok("sign", "--key", self.key, "--version", "1.0.0", "--board", "posix",
                "--pad-to", "0x40000", src, out)
        data = self.read(out)
        self.assertEqual(len(data), 0x40000)
        img = imgtool_verify(data, self.key)
        self.assertEqual(data[img["end"]:], b"\xff" * (0x40000 - img["end"]))
        self.assertEqual(self.ok("verify", "--key", self.key, "--board", "posix", out),
                         "ok: 1.0.0+0 1000 bytes\n")
        self.ok("sign", "--key", self.key, "--version", "1.0.0", "--pad-to", "4K", src, out)
        self.assertEqual(len(self.read(out)), 4096)
        self.ok("verify", "--key", self.key, out)
        # Exactly the image's size is fine, one byte less is not. (mbedTLS signs
        # deterministically, RFC 6979: the same key and bytes give the same
        # signature, so the unpadded size is known from the first run.)
        self.ok("sign", "--key", self.key, "--version", "1.0.0", src, out)
        exact = len(self.read(out))
        self.ok("sign", "--key", self.key, "--version", "1.0.0", "--pad-to", str(exact), src, out)
        self.assertEqual(len(self.read(out)), exact)
        before = self.read(out)
        self.fails("sign", "--key", self.key, "--version", "1.0.0", "--pad-to", str(exact - 1),
                   src, out, match=r"larger than --pad-to")
        self.assertEqual(self.read(out), before)  # a failed sign leaves OUT alone

    def test_info_on_malformed_images(self):
        """info reads any prefix or damaged copy without crashing; what does
        not parse ends in one error line."""
        variants = [self.data[:i] for i in range(0, len(self.data), 7)]
        b = bytearray(self.data)
        struct.pack_into("<I", b, 12, 0xFFFFFFF0)  # img_size far past the end
        variants.append(bytes(b))
        b = bytearray(self.data)
        struct.pack_into("<H", b, self.img["hashed_len"] + 2, 0xFFFF)  # TLV total too big
        variants.append(bytes(b))
        rnd = random.Random(10)
        variants += [bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(200))) for _ in range(20)]
        for i, v in enumerate(variants):
            r = run("info", self.write("m.img", v))
            with self.subTest(i=i, size=len(v)):
                self.assertIn(r.returncode, (0, 1), r.stderr)
                self.assertTrue(r.stdout.startswith("file_size: %d\n" % len(v)))
                if r.returncode:
                    self.assertEqual(len(r.stderr.splitlines()), 1)
                    self.assertTrue(r.stderr.startswith("error: "))


class ManySignaturesTest(FwsignCase):
    """(e) 1,000 fwsign sign runs, each with a fresh key, all verify."""

    RUNS = 1000

    def test_thousand_fresh_keys(self):
        seed = random.randrange(1 << 32)
        print("payload seed %d, %d workers" % (seed, WORKERS))
        rnd = random.Random(seed)
        jobs = []
        for i in range(self.RUNS):
            payload = rnd.randbytes(rnd.randrange(0, 4096))
            opts = ["--version", "%d.%d.%d+%d" % (rnd.randrange(256), rnd.randrange(256),
                                                  rnd.randrange(65536), rnd.randrange(1 << 32))]
            if rnd.random() < 0.7:
                opts += ["--security-counter", str(rnd.randrange(1 << 32))]
            if rnd.random() < 0.7:
                opts += ["--board", "posix"]
            jobs.append((i, payload, opts))

        def one(job):
            i, payload, opts = job
            d = os.path.join(self.dir, "r%04d" % i)
            os.mkdir(d)
            key, src, out = (os.path.join(d, n) for n in ("k.pem", "p.bin", "o.img"))
            with open(src, "wb") as f:
                f.write(payload)
            for args in (["keygen", key], ["sign", "--key", key, *opts, src, out],
                         ["verify", "--key", key, out]):
                r = run(*args)
                if r.returncode != 0:
                    return i, None, "fwsign %s: %s" % (" ".join(args), r.stderr.strip())
            with open(out, "rb") as f:
                data = f.read()
            try:
                img = imgtool_verify(data, key)
            except (ValueError, InvalidSignature) as e:
                return i, None, "independent check: %r" % e
            sig = dict(img["tlvs"])[TLV_ECDSA_SIG]
            if len(sig) != der_len(sig):
                return i, None, "signature padded to %d bytes" % len(sig)
            shutil.rmtree(d)
            return i, len(sig), None

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as ex:
            results = list(ex.map(one, jobs))
        elapsed = time.monotonic() - t0
        failures = [(i, why) for i, _, why in results if why]
        hist = collections.Counter(n for _, n, why in results if not why)
        print("%d keygen+sign+verify runs in %.1f s; signature DER lengths: %s"
              % (self.RUNS, elapsed, ", ".join("%d: %d" % kv for kv in sorted(hist.items()))))
        self.assertEqual(failures, [])
        self.assertEqual(sum(hist.values()), self.RUNS)
        self.assertLess(min(hist), 71, "no signature shorter than 71 bytes in %d" % self.RUNS)


if __name__ == "__main__":
    unittest.main()
