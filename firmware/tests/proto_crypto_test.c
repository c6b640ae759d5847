/*
 * proto_crypto_test.c -- SHA-256 against the FIPS 180-4 example vectors and HMAC-SHA256 against
 * RFC 4231 test cases 1-7, including incremental updates split at every awkward boundary.
 * Exit status 0 when every check passes; each failure prints one line.
 */
#include <stdio.h>
#include <string.h>

#include "check_common.h"
#include "dysan_auth.h"
#include "dysan_hmac.h"
#include "dysan_sha256.h"
#include "proto_test_common.h"

static void sha_vector(const char *msg, size_t repeat, const char *want_hex)
{
    uint8_t want[32];
    CHECK_MSG(unhex(want_hex, want, sizeof want) == sizeof want, "sha256 vector: 32 hex bytes");
    uint8_t got[32];
    const size_t len = strlen(msg);
    if (repeat == 1u) {
        dysan_sha256((const uint8_t *)msg, len, got);
        CHECK_MSG(memcmp(got, want, 32) == 0, "sha256(\"%.20s...\") one-shot", msg);
    }
    /* Incremental, in pieces of every size from 1 to 130 bytes (crosses block boundaries everywhere). */
    for (size_t piece = 1; piece <= 130u; piece += (repeat == 1u ? 1u : 43u)) {
        dysan_sha256_t c;
        dysan_sha256_init(&c);
        size_t left = len * repeat;
        size_t pos = 0;
        while (left > 0u) {
            uint8_t buf[130];
            const size_t take = left < piece ? left : piece;
            for (size_t i = 0; i < take; ++i) {
                buf[i] = (uint8_t)msg[(pos + i) % len];
            }
            dysan_sha256_update(&c, buf, take);
            pos += take;
            left -= take;
        }
        dysan_sha256_final(&c, got);
        CHECK_MSG(memcmp(got, want, 32) == 0, "sha256(\"%.20s...\" x%zu) in %zu-byte pieces", msg, repeat, piece);
    }
}

static void hmac_vector(const uint8_t *key, size_t key_len, const uint8_t *data, size_t n, const char *want_hex,
                        const char *name)
{
    uint8_t want[32];
    const size_t want_len = unhex(want_hex, want, sizeof want);
    CHECK_MSG(want_len >= 16u && want_len <= sizeof want, "HMAC %s vector: 16..32 hex bytes", name);
    if (want_len < 16u || want_len > sizeof want) {
        return;
    }
    uint8_t got[32];
    dysan_hmac_sha256(key, key_len, data, n, got);
    CHECK_MSG(memcmp(got, want, want_len) == 0, "HMAC %s one-shot", name);
    for (size_t split = 0; split <= n; split += 7u) {
        dysan_hmac_sha256_t c;
        dysan_hmac_sha256_init(&c, key, key_len);
        dysan_hmac_sha256_update(&c, data, split);
        dysan_hmac_sha256_update(&c, data + split, n - split);
        dysan_hmac_sha256_final(&c, got);
        CHECK_MSG(memcmp(got, want, want_len) == 0, "HMAC %s split at %zu", name, split);
    }
}

static void test_sha256(void)
{
    sha_vector("abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_vector("", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_vector("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
               "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    sha_vector("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
               "mnopqrstnopqrstu",
               1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    sha_vector("a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_hmac(void)
{
    uint8_t k[131];
    uint8_t d[160];
    memset(k, 0x0b, 20);
    hmac_vector(k, 20, (const uint8_t *)"Hi There", 8,
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", "RFC4231 #1");
    hmac_vector((const uint8_t *)"Jefe", 4, (const uint8_t *)"what do ya want for nothing?", 28,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "RFC4231 #2");
    memset(k, 0xaa, 20);
    memset(d, 0xdd, 50);
    hmac_vector(k, 20, d, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", "RFC4231 #3");
    for (unsigned i = 0; i < 25u; ++i) {
        k[i] = (uint8_t)(i + 1u);
    }
    memset(d, 0xcd, 50);
    hmac_vector(k, 25, d, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", "RFC4231 #4");
    memset(k, 0x0c, 20);
    hmac_vector(k, 20, (const uint8_t *)"Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b",
                "RFC4231 #5 (truncated to 128 bits, as our tags)");
    memset(k, 0xaa, 131);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    hmac_vector(k, 131, (const uint8_t *)m6, strlen(m6),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", "RFC4231 #6");
    const char *m7 = "This is a test using a larger than block-size key and a larger than block-size data. The key "
                     "needs to be hashed before being used by the HMAC algorithm.";
    hmac_vector(k, 131, (const uint8_t *)m7, strlen(m7),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", "RFC4231 #7");
}

static void test_equal(void)
{
    uint8_t a[16];
    uint8_t b[16];
    memset(a, 0x5a, sizeof a);
    memcpy(b, a, sizeof b);
    CHECK_MSG(dysan_auth_equal(a, b, sizeof a) == 1, "equal buffers");
    for (size_t i = 0; i < sizeof a; ++i) {
        for (unsigned bit = 0; bit < 8u; ++bit) {
            b[i] ^= (uint8_t)(1u << bit);
            CHECK_MSG(dysan_auth_equal(a, b, sizeof a) == 0, "differ at byte %zu bit %u", i, bit);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK_MSG(dysan_auth_equal(a, b, 0) == 1, "empty buffers are equal");
}

int main(void)
{
    test_sha256();
    test_hmac();
    test_equal();
    printf("proto_crypto_test: %s (%d failures)\n", s_failures ? "FAILED" : "ok", s_failures);
    return s_failures ? 1 : 0;
}
