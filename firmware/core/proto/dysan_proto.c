/* dysan_proto.c -- acceptance rules and message encoding (see dysan_proto.h). */
#include "dysan_proto.h"

#include <string.h>

int dysan_proto_accept(const dysan_frame_t *f, uint8_t receiver, dysan_auth_t *auth, dysan_msg_t *msg,
                       int *authenticated)
{
    if (f == NULL || msg == NULL || authenticated == NULL) {
        return DYSAN_ERR_INTERNAL;
    }
    *authenticated = 0;
    const dysan_msg_desc_t *d = dysan_msg_desc(f->msg_id);
    if (d == NULL) {
        return DYSAN_ERR_UNKNOWN_MSG;
    }
    if ((d->dir & receiver) == 0u) {
        return DYSAN_ERR_WRONG_DIRECTION;
    }
    const int signed_frame = (f->flags & DYSAN_FRAME_FLAG_AUTH) != 0u;
    if (d->auth || signed_frame) {
        if (auth == NULL) {
            return signed_frame ? DYSAN_ERR_NOT_PROVISIONED : DYSAN_ERR_AUTH_REQUIRED;
        }
        const int rc = dysan_auth_verify(auth, f);
        if (rc != DYSAN_OK) {
            return rc;
        }
    }
    const int rc = dysan_msg_unpack(f->msg_id, f->payload, f->len, msg);
    if (rc != DYSAN_OK) {
        return rc;
    }
    if (d->auth || signed_frame) {
        const int crc = dysan_auth_commit(auth, f->counter);
        if (crc != DYSAN_OK) {
            return crc;
        }
        *authenticated = 1;
    }
    return DYSAN_OK;
}

static int encode(const dysan_msg_t *m, uint16_t seq, const uint8_t *key, const uint8_t *device_id,
                  uint32_t counter, uint8_t *scratch, size_t scratch_cap, uint8_t *out, size_t cap,
                  size_t *written)
{
    if (written == NULL) {
        return DYSAN_ERR_INTERNAL;
    }
    *written = 0;
    size_t len = 0;
    const int rc = dysan_msg_pack(m, scratch, scratch_cap, &len);
    if (rc != DYSAN_OK) {
        return rc;
    }
    uint8_t tag[DYSAN_AUTH_TAG_SIZE];
    dysan_frame_t f = {m->id, 0, seq, (uint16_t)len, scratch, 0, NULL};
    if (key != NULL) {
        dysan_auth_tag(key, device_id, m->id, counter, scratch, len, tag);
        f.flags = DYSAN_FRAME_FLAG_AUTH;
        f.counter = counter;
        f.tag = tag;
    }
    return dysan_frame_encode(&f, out, cap, written);
}

int dysan_proto_encode(const dysan_msg_t *m, uint16_t seq, uint8_t *scratch, size_t scratch_cap, uint8_t *out,
                       size_t cap, size_t *written)
{
    return encode(m, seq, NULL, NULL, 0, scratch, scratch_cap, out, cap, written);
}

int dysan_proto_encode_signed(const dysan_msg_t *m, uint16_t seq, const uint8_t key[DYSAN_AUTH_KEY_SIZE],
                              const uint8_t device_id[DYSAN_DEVICE_ID_SIZE], uint32_t counter,
                              uint8_t *scratch, size_t scratch_cap, uint8_t *out, size_t cap, size_t *written)
{
    if (key == NULL || device_id == NULL) {
        return DYSAN_ERR_NOT_PROVISIONED;
    }
    return encode(m, seq, key, device_id, counter, scratch, scratch_cap, out, cap, written);
}

void dysan_proto_error(dysan_msg_t *m, uint16_t code, uint8_t ref_msg, uint16_t ref_seq, const char *text)
{
    if (m == NULL) {
        return;
    }
    memset(m, 0, sizeof *m);
    m->id = DYSAN_MSG_ERROR;
    m->body.error.code = code;
    m->body.error.ref_msg = ref_msg;
    m->body.error.ref_seq = ref_seq;
    size_t n = 0;
    if (text != NULL) {
        while (n < (size_t)DYSAN_MSG_ERROR_TEXT_MAX && text[n] != '\0') {
            n++;
        }
        memcpy(m->body.error.text, text, n);
    }
    m->body.error.text_len = (uint16_t)n;
}
