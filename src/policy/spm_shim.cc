// C shim over sentencepiece::SentencePieceProcessor. No exception crosses into C.
#include "policy/spm_shim.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

struct SpmModel {
    sentencepiece::SentencePieceProcessor sp;
};

static void put_msg(char *msg, size_t n, const std::string &s) {
    if (msg && n) std::snprintf(msg, n, "%s", s.c_str());
}

extern "C" SpmModel *spm_load(const char *path, char *msg, size_t n) {
    try {
        SpmModel *m = new SpmModel();
        auto st = m->sp.Load(path);
        if (!st.ok()) {
            put_msg(msg, n, st.ToString());
            delete m;
            return nullptr;
        }
        return m;
    } catch (const std::exception &e) {
        put_msg(msg, n, e.what());
    } catch (...) {
        put_msg(msg, n, "unknown C++ exception");
    }
    return nullptr;
}

extern "C" void spm_free(SpmModel *m) { delete m; }

extern "C" int spm_piece_size(const SpmModel *m) { return m->sp.GetPieceSize(); }

extern "C" const char *spm_id_to_piece(const SpmModel *m, int id) {
    if (id < 0 || id >= m->sp.GetPieceSize()) return nullptr;
    return m->sp.IdToPiece(id).c_str();
}

extern "C" int spm_piece_to_id(const SpmModel *m, const char *piece) {
    int id = m->sp.PieceToId(piece);
    // PieceToId answers unk_id for an unknown piece: only the unknown piece itself maps there.
    if (id == m->sp.unk_id() && m->sp.IdToPiece(id) != piece) return -1;
    return id;
}

extern "C" int spm_is_control(const SpmModel *m, int id) { return m->sp.IsControl(id) ? 1 : 0; }
extern "C" int spm_is_byte(const SpmModel *m, int id) { return m->sp.IsByte(id) ? 1 : 0; }
extern "C" int spm_unk_id(const SpmModel *m) { return m->sp.unk_id(); }
extern "C" int spm_bos_id(const SpmModel *m) { return m->sp.bos_id(); }
extern "C" int spm_eos_id(const SpmModel *m) { return m->sp.eos_id(); }
extern "C" int spm_pad_id(const SpmModel *m) { return m->sp.pad_id(); }

extern "C" int spm_encode(const SpmModel *m, const char *text, size_t len, int **ids, int *n, char *msg,
                          size_t msg_n) {
    try {
        std::vector<int> v;
        auto st = m->sp.Encode(std::string(text, len), &v);
        if (!st.ok()) {
            put_msg(msg, msg_n, st.ToString());
            return -1;
        }
        int *out = (int *)std::malloc((v.size() ? v.size() : 1) * sizeof(int));
        if (!out) {
            put_msg(msg, msg_n, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < v.size(); i++) out[i] = v[i];
        *ids = out;
        *n = (int)v.size();
        return 0;
    } catch (const std::exception &e) {
        put_msg(msg, msg_n, e.what());
    } catch (...) {
        put_msg(msg, msg_n, "unknown C++ exception");
    }
    return -1;
}

extern "C" int spm_decode(const SpmModel *m, const int *ids, int n, char **text, size_t *len, char *msg,
                          size_t msg_n) {
    try {
        std::vector<int> v(ids, ids + n);
        std::string s;
        auto st = m->sp.Decode(v, &s);
        if (!st.ok()) {
            put_msg(msg, msg_n, st.ToString());
            return -1;
        }
        char *out = (char *)std::malloc(s.size() + 1);
        if (!out) {
            put_msg(msg, msg_n, "out of memory");
            return -1;
        }
        std::memcpy(out, s.data(), s.size());
        out[s.size()] = 0;
        *text = out;
        if (len) *len = s.size();
        return 0;
    } catch (const std::exception &e) {
        put_msg(msg, msg_n, e.what());
    } catch (...) {
        put_msg(msg, msg_n, "unknown C++ exception");
    }
    return -1;
}
