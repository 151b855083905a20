/*
 * A C peer of the Shoal wire protocol, built at test time by TransportTests against code that
 * protoc-c generates from Proto/shoal.proto (so the schema is proven usable from C) and libzmq.
 *
 *   shoal_c_peer encode             write a fixed Header (Step body, two tensor descs) to stdout
 *   shoal_c_peer decode             read a Header from stdin, print its set fields, one per line
 *   shoal_c_peer serve              bind a ROUTER on loopback, print its endpoint, answer Ping
 *                                   with Pong and echo every other valid message
 *   shoal_c_peer client EP IDENT    connect a DEALER to EP as IDENT, send a Ping, then idle
 *
 * The decode output format ("path=value", only non-default fields, enums by name, strings
 * quoted) is what the Swift test compares against.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "shoal.pb-c.h"

static void print_message(const ProtobufCMessage *message, const char *path);

static void print_scalar(const ProtobufCFieldDescriptor *field, const void *value) {
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: printf("%" PRId32, *(const int32_t *)value); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: printf("%" PRIu32, *(const uint32_t *)value); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: printf("%" PRId64, *(const int64_t *)value); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: printf("%" PRIu64, *(const uint64_t *)value); break;
    case PROTOBUF_C_TYPE_BOOL: printf("%s", *(const protobuf_c_boolean *)value ? "true" : "false"); break;
    case PROTOBUF_C_TYPE_FLOAT: printf("%g", *(const float *)value); break;
    case PROTOBUF_C_TYPE_DOUBLE: printf("%g", *(const double *)value); break;
    case PROTOBUF_C_TYPE_STRING: printf("\"%s\"", *(char *const *)value); break;
    case PROTOBUF_C_TYPE_ENUM: {
        int number = *(const int *)value;
        const ProtobufCEnumValue *named =
            protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)field->descriptor, number);
        if (named) printf("%s", named->name); else printf("%d", number);
        break;
    }
    default: printf("?"); break;
    }
}

static size_t scalar_size(const ProtobufCFieldDescriptor *field) {
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static int is_default(const ProtobufCFieldDescriptor *field, const void *value) {
    if (field->type == PROTOBUF_C_TYPE_STRING) {
        const char *text = *(char *const *)value;
        return text == NULL || text[0] == '\0';
    }
    if (field->type == PROTOBUF_C_TYPE_MESSAGE) return *(void *const *)value == NULL;
    static const unsigned char zero[8];
    return memcmp(value, zero, scalar_size(field)) == 0;
}

/* Prints every field that is set, depth first, in schema order. */
static void print_message(const ProtobufCMessage *message, const char *path) {
    const ProtobufCMessageDescriptor *descriptor = message->descriptor;
    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
        const char *base = (const char *)message;
        char name[512];
        snprintf(name, sizeof name, "%s%s%s", path, path[0] ? "." : "", field->name);
        if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + field->quantifier_offset) != field->id) continue;
        }
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *)(base + field->quantifier_offset);
            const char *items = *(char *const *)(base + field->offset);
            if (count == 0) continue;
            if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
                for (size_t k = 0; k < count; k++) {
                    char item[600];
                    snprintf(item, sizeof item, "%s[%zu]", name, k);
                    print_message(((ProtobufCMessage *const *)items)[k], item);
                }
            } else {
                printf("%s=[", name);
                for (size_t k = 0; k < count; k++) {
                    if (k) printf(",");
                    print_scalar(field, items + k * scalar_size(field));
                }
                printf("]\n");
            }
            continue;
        }
        const void *value = base + field->offset;
        if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessage *child = *(ProtobufCMessage *const *)value;
            if (child == NULL) continue;
            printf("%s={}\n", name); /* marks presence, even of an empty message */
            print_message(child, name);
            continue;
        }
        if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0 && is_default(field, value)) continue;
        printf("%s=", name);
        print_scalar(field, value);
        printf("\n");
    }
}

static int encode(void) {
    int32_t tokens_a[] = {1, -2, 300};
    int32_t tokens_b[] = {11};
    Shoal__V1__SequenceStep a = SHOAL__V1__SEQUENCE_STEP__INIT;
    a.seq_id = 3; a.start_position = 5; a.n_token_ids = 3; a.token_ids = tokens_a;
    Shoal__V1__SequenceStep b = SHOAL__V1__SEQUENCE_STEP__INIT;
    b.seq_id = 9; b.start_position = 0; b.n_token_ids = 1; b.token_ids = tokens_b;
    Shoal__V1__SequenceStep *sequences[] = {&a, &b};

    Shoal__V1__Step step = SHOAL__V1__STEP__INIT;
    step.request_id = 7; step.step_id = 42; step.n_sequences = 2; step.sequences = sequences;
    step.want_logits = 1;

    uint64_t hidden_shape[] = {2, 4}, ids_shape[] = {3};
    Shoal__V1__TensorDesc hidden = SHOAL__V1__TENSOR_DESC__INIT;
    hidden.name = "hidden"; hidden.dtype = SHOAL__V1__DTYPE__DTYPE_BF16;
    hidden.n_shape = 2; hidden.shape = hidden_shape; hidden.byte_length = 16;
    Shoal__V1__TensorDesc ids = SHOAL__V1__TENSOR_DESC__INIT;
    ids.name = "ids"; ids.dtype = SHOAL__V1__DTYPE__DTYPE_I32;
    ids.n_shape = 1; ids.shape = ids_shape; ids.byte_length = 12;
    Shoal__V1__TensorDesc *tensors[] = {&hidden, &ids};

    Shoal__V1__Header header = SHOAL__V1__HEADER__INIT;
    header.protocol_version = SHOAL__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    header.n_tensors = 2; header.tensors = tensors;
    header.body_case = SHOAL__V1__HEADER__BODY_STEP; header.step = &step;

    size_t size = shoal__v1__header__get_packed_size(&header);
    uint8_t *buffer = malloc(size);
    shoal__v1__header__pack(&header, buffer);
    fwrite(buffer, 1, size, stdout);
    free(buffer);
    return 0;
}

static int decode(void) {
    size_t capacity = 1 << 16, size = 0, got;
    uint8_t *buffer = malloc(capacity);
    while ((got = fread(buffer + size, 1, capacity - size, stdin)) > 0) {
        size += got;
        if (size == capacity) buffer = realloc(buffer, capacity *= 2);
    }
    Shoal__V1__Header *header = shoal__v1__header__unpack(NULL, size, buffer);
    free(buffer);
    if (header == NULL) {
        fprintf(stderr, "shoal_c_peer: cannot unpack Header (%zu bytes)\n", size);
        return 1;
    }
    print_message(&header->base, "");
    shoal__v1__header__free_unpacked(header, NULL);
    return 0;
}

static void send_header(void *socket, const Shoal__V1__Header *header, int more) {
    size_t size = shoal__v1__header__get_packed_size(header);
    zmq_msg_t frame;
    zmq_msg_init_size(&frame, size);
    shoal__v1__header__pack(header, zmq_msg_data(&frame));
    zmq_msg_send(&frame, socket, more ? ZMQ_SNDMORE : 0);
}

static int serve(void) {
    void *context = zmq_ctx_new();
    void *router = zmq_socket(context, ZMQ_ROUTER);
    if (zmq_bind(router, "tcp://127.0.0.1:*") != 0) { perror("bind"); return 1; }
    char endpoint[256];
    size_t length = sizeof endpoint;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &length);
    printf("%s\n", endpoint);
    fflush(stdout);
    for (;;) {
        zmq_msg_t frames[64];
        int count = 0, more = 1;
        while (more && count < 64) {
            zmq_msg_init(&frames[count]);
            if (zmq_msg_recv(&frames[count], router, 0) < 0) return 1;
            more = zmq_msg_more(&frames[count]);
            count++;
        }
        Shoal__V1__Header *header = count >= 2
            ? shoal__v1__header__unpack(NULL, zmq_msg_size(&frames[1]), zmq_msg_data(&frames[1])) : NULL;
        int valid = header != NULL && header->n_tensors == (size_t)(count - 2);
        for (int i = 0; valid && i < count - 2; i++) {
            valid = header->tensors[i]->byte_length == zmq_msg_size(&frames[i + 2]);
        }
        if (valid && header->body_case == SHOAL__V1__HEADER__BODY_PING) {
            Shoal__V1__Pong pong = SHOAL__V1__PONG__INIT;
            pong.nonce = header->ping->nonce;
            Shoal__V1__Header reply = SHOAL__V1__HEADER__INIT;
            reply.protocol_version = SHOAL__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
            reply.body_case = SHOAL__V1__HEADER__BODY_PONG;
            reply.pong = &pong;
            zmq_msg_send(&frames[0], router, ZMQ_SNDMORE);
            send_header(router, &reply, 0);
        } else if (valid) {
            for (int i = 0; i < count; i++) zmq_msg_send(&frames[i], router, i < count - 1 ? ZMQ_SNDMORE : 0);
        }
        if (header) shoal__v1__header__free_unpacked(header, NULL);
        for (int i = 0; i < count; i++) zmq_msg_close(&frames[i]);
    }
}

static int client(const char *endpoint, const char *identity) {
    void *context = zmq_ctx_new();
    void *dealer = zmq_socket(context, ZMQ_DEALER);
    zmq_setsockopt(dealer, ZMQ_ROUTING_ID, identity, strlen(identity));
    if (zmq_connect(dealer, endpoint) != 0) { perror("connect"); return 1; }
    Shoal__V1__Ping ping = SHOAL__V1__PING__INIT;
    ping.nonce = 77;
    Shoal__V1__Header header = SHOAL__V1__HEADER__INIT;
    header.protocol_version = SHOAL__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    header.body_case = SHOAL__V1__HEADER__BODY_PING;
    header.ping = &ping;
    send_header(dealer, &header, 0);
    printf("sent\n");
    fflush(stdout);
    for (;;) pause();
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "encode") == 0) return encode();
    if (argc >= 2 && strcmp(argv[1], "decode") == 0) return decode();
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) return serve();
    if (argc >= 4 && strcmp(argv[1], "client") == 0) return client(argv[2], argv[3]);
    fprintf(stderr, "usage: shoal_c_peer encode | decode | serve | client ENDPOINT IDENTITY\n");
    return 2;
}
