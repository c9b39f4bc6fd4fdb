/* MD5 of several equal-length messages at once, one message per vector lane.
 *
 * MD5 is one long chain of dependent steps, so a single message keeps a core
 * waiting on latency, not busy; eight messages side by side run in about the
 * time of two. The multipart copy hashes every part it sends (the part's MD5 is
 * what the destination's ETag is checked against), so it hashes parts in groups.
 *
 * md5_lanes(messages) -> list[bytes]
 *     messages: a sequence of messages of equal length, each a sequence of
 *     buffers (the pieces the message arrived in, in order); returns each
 *     message's 16-byte MD5. The GIL is released while hashing.
 *
 * The steps are RFC 1321's, written once with GCC vector extensions (GCC and
 * Clang); on x86-64 they are also compiled for AVX2 and for AVX-512VL (a vector
 * rotate, three-input logic), and the module picks what the CPU has at import.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define LANES 8

typedef uint32_t lanes_t __attribute__((vector_size(4 * LANES)));

static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const int SHIFT[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

/* Where a lane is in its message: the current piece and the offset in it. */
typedef struct {
    Py_buffer *pieces;
    Py_ssize_t count;
    Py_ssize_t index;
    Py_ssize_t offset;
} cursor_t;

/* The next `n` bytes of a lane's message into `out`, across piece boundaries. */
static void
take(cursor_t *cursor, unsigned char *out, Py_ssize_t n)
{
    while (n > 0) {
        Py_buffer *piece = &cursor->pieces[cursor->index];
        Py_ssize_t left = piece->len - cursor->offset;
        if (left == 0) {
            cursor->index++;
            cursor->offset = 0;
            continue;
        }
        Py_ssize_t step = left < n ? left : n;
        memcpy(out, (const unsigned char *)piece->buf + cursor->offset, (size_t)step);
        cursor->offset += step;
        out += step;
        n -= step;
    }
}

static inline uint32_t
load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define ROTL(x, c) (((x) << (c)) | ((x) >> (32 - (c))))

/* The 64 steps over one block of every lane, its words in `m` (word i of lane j at m[i][j]). */
static inline __attribute__((always_inline)) void
rounds(lanes_t state[4], const lanes_t m[16])
{
    lanes_t a = state[0], b = state[1], c = state[2], d = state[3];
#pragma GCC unroll 64
    for (int i = 0; i < 64; i++) {
        lanes_t f;
        int g;
        if (i < 16) {
            f = d ^ (b & (c ^ d));
            g = i;
        } else if (i < 32) {
            f = c ^ (d & (b ^ c));
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
        }
        /* f last: it is the only term waiting on the previous step. */
        lanes_t sum = (a + (m[g] + K[i])) + f;
        a = d;
        d = c;
        c = b;
        b = b + ROTL(sum, SHIFT[i]);
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

typedef void (*compress_t)(lanes_t state[4], const unsigned char *block[LANES]);

/* One 64-byte block of every lane (`block[lane]`) into the state, on any CPU. */
static void
compress_generic(lanes_t state[4], const unsigned char *block[LANES])
{
    lanes_t m[16];
    for (int word = 0; word < 16; word++) {
        uint32_t column[LANES];
        for (int lane = 0; lane < LANES; lane++) {
            column[lane] = load_le32(block[lane] + 4 * word);
        }
        memcpy(&m[word], column, sizeof column);
    }
    rounds(state, m);
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86_CLONES 1

/* Eight lanes' words 8*half..8*half+7, loaded by rows and transposed into m. */
#define TRANSPOSE_INTO(m, block, half)                                                   \
    do {                                                                                 \
        __m256i r[8], t[8], u[8];                                                        \
        for (int lane = 0; lane < 8; lane++) {                                           \
            r[lane] = _mm256_loadu_si256((const __m256i *)((block)[lane] + 32 * (half))); \
        }                                                                                \
        for (int k = 0; k < 4; k++) {                                                    \
            t[2 * k] = _mm256_unpacklo_epi32(r[2 * k], r[2 * k + 1]);                    \
            t[2 * k + 1] = _mm256_unpackhi_epi32(r[2 * k], r[2 * k + 1]);                \
        }                                                                                \
        for (int k = 0; k < 2; k++) {                                                    \
            u[4 * k] = _mm256_unpacklo_epi64(t[4 * k], t[4 * k + 2]);                    \
            u[4 * k + 1] = _mm256_unpackhi_epi64(t[4 * k], t[4 * k + 2]);                \
            u[4 * k + 2] = _mm256_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);            \
            u[4 * k + 3] = _mm256_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);            \
        }                                                                                \
        for (int k = 0; k < 4; k++) {                                                    \
            __m256i low = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);               \
            __m256i high = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);              \
            memcpy(&(m)[8 * (half) + k], &low, sizeof low);                              \
            memcpy(&(m)[8 * (half) + k + 4], &high, sizeof high);                        \
        }                                                                                \
    } while (0)

/* One body, compiled for each instruction set it is picked for at import. */
#define DEFINE_COMPRESS(name, isa)                                 \
    __attribute__((target(isa))) static void                       \
    name(lanes_t state[4], const unsigned char *block[LANES])      \
    {                                                              \
        lanes_t m[16];                                             \
        TRANSPOSE_INTO(m, block, 0);                               \
        TRANSPOSE_INTO(m, block, 1);                               \
        rounds(state, m);                                          \
    }

DEFINE_COMPRESS(compress_avx2, "avx2")
/* AVX-512VL adds a vector rotate and three-input logic: fewer steps on the chain. */
DEFINE_COMPRESS(compress_avx512, "avx2,avx512f,avx512vl")
#endif

static compress_t compress = compress_generic;

/* The digests of `lanes` messages of `length` bytes each, read through `cursors`. */
static void
hash_lanes(cursor_t *cursors, int lanes, Py_ssize_t length, unsigned char digests[][16])
{
    /* A block is read where it lies when it is whole in one piece, else copied here. */
    static const unsigned char unused[64];
    unsigned char copies[LANES][64];
    const unsigned char *block[LANES];
    lanes_t state[4];
    for (int lane = 0; lane < LANES; lane++) {
        state[0][lane] = 0x67452301;
        state[1][lane] = 0xefcdab89;
        state[2][lane] = 0x98badcfe;
        state[3][lane] = 0x10325476;
        block[lane] = unused;
    }
    Py_ssize_t whole = length / 64;
    for (Py_ssize_t n = 0; n < whole; n++) {
        for (int lane = 0; lane < lanes; lane++) {
            cursor_t *cursor = &cursors[lane];
            while (cursor->offset == cursor->pieces[cursor->index].len) {
                cursor->index++;
                cursor->offset = 0;
            }
            Py_buffer *piece = &cursor->pieces[cursor->index];
            if (piece->len - cursor->offset >= 64) {
                block[lane] = (const unsigned char *)piece->buf + cursor->offset;
                cursor->offset += 64;
            } else {
                take(cursor, copies[lane], 64);
                block[lane] = copies[lane];
            }
        }
        compress(state, block);
    }
    /* The tail, 0x80, zeros, and the length in bits: one block, or two. */
    Py_ssize_t tail = length % 64;
    uint64_t bits = (uint64_t)length * 8;
    int blocks = tail < 56 ? 1 : 2;
    unsigned char last[LANES][128];
    memset(last, 0, sizeof last);
    for (int lane = 0; lane < lanes; lane++) {
        take(&cursors[lane], last[lane], tail);
        last[lane][tail] = 0x80;
        for (int i = 0; i < 8; i++) {
            last[lane][64 * blocks - 8 + i] = (unsigned char)(bits >> (8 * i));
        }
    }
    for (int n = 0; n < blocks; n++) {
        for (int lane = 0; lane < lanes; lane++) {
            block[lane] = &last[lane][64 * n];
        }
        compress(state, block);
    }
    for (int lane = 0; lane < lanes; lane++) {
        for (int word = 0; word < 4; word++) {
            uint32_t value = state[word][lane];
            for (int i = 0; i < 4; i++) {
                digests[lane][4 * word + i] = (unsigned char)(value >> (8 * i));
            }
        }
    }
}

static void
release(Py_buffer *buffers, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        PyBuffer_Release(&buffers[i]);
    }
}

static PyObject *
md5_lanes(PyObject *Py_UNUSED(module), PyObject *arg)
{
    PyObject *messages = PySequence_Fast(arg, "md5_lanes() takes a sequence of messages");
    if (messages == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(messages);
    PyObject *result = NULL;
    cursor_t *cursors = PyMem_Calloc((size_t)(count ? count : 1), sizeof(cursor_t));
    unsigned char(*digests)[16] = PyMem_Calloc((size_t)(count ? count : 1), 16);
    if (cursors == NULL || digests == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t length = -1;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pieces = PySequence_Fast(
            PySequence_Fast_GET_ITEM(messages, i), "a message is a sequence of buffers");
        if (pieces == NULL) {
            goto done;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(pieces);
        cursors[i].pieces = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_buffer));
        if (cursors[i].pieces == NULL) {
            Py_DECREF(pieces);
            PyErr_NoMemory();
            goto done;
        }
        Py_ssize_t total = 0;
        for (Py_ssize_t j = 0; j < n; j++) {
            PyObject *piece = PySequence_Fast_GET_ITEM(pieces, j);
            if (PyObject_GetBuffer(piece, &cursors[i].pieces[j], PyBUF_C_CONTIGUOUS) < 0) {
                Py_DECREF(pieces);
                goto done;
            }
            cursors[i].count++;
            total += cursors[i].pieces[j].len;
        }
        Py_DECREF(pieces);
        if (length >= 0 && total != length) {
            PyErr_Format(PyExc_ValueError,
                         "md5_lanes() takes messages of one length: %zd bytes, then %zd",
                         length, total);
            goto done;
        }
        length = total;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t first = 0; first < count; first += LANES) {
        int lanes = (int)(count - first < LANES ? count - first : LANES);
        hash_lanes(&cursors[first], lanes, length, &digests[first]);
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(count);
    if (result == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *digest = PyBytes_FromStringAndSize((const char *)digests[i], 16);
        if (digest == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, digest);
    }
done:
    if (cursors != NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            if (cursors[i].pieces != NULL) {
                release(cursors[i].pieces, cursors[i].count);
                PyMem_Free(cursors[i].pieces);
            }
        }
        PyMem_Free(cursors);
    }
    PyMem_Free(digests);
    Py_DECREF(messages);
    return result;
}

static PyMethodDef methods[] = {
    {"md5_lanes", md5_lanes, METH_O,
     "md5_lanes(messages) -> list[bytes]: the MD5 of each of several equal-length messages, "
     "each given as a sequence of buffers."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cstor.s3._md5lanes",
    .m_doc = "MD5 of several equal-length messages at once, one per vector lane.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__md5lanes(void)
{
#ifdef HAVE_X86_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) {
        compress = compress_avx512;
    } else if (__builtin_cpu_supports("avx2")) {
        compress = compress_avx2;
    }
#endif
    return PyModule_Create(&module);
}
