/*
 * u64set.c - see u64set.h.  Removal shifts back the entries after the
 * freed slot that would no longer be found (no tombstones), so a set that
 * grows and shrinks for days does not fill up with them.
 */
#include "u64set.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot_of(uint64_t v, size_t cap)
{
    v ^= v >> 33;                       /* inode numbers are dense: spread them */
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return (size_t)v & (cap - 1);
}

static void put(uint64_t *slots, size_t cap, uint64_t v)
{
    size_t i = slot_of(v, cap);
    while (slots[i] && slots[i] != v)
        i = (i + 1) & (cap - 1);
    slots[i] = v;
}

static int grow(struct u64set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 16;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i])
            put(slots, cap, s->slots[i]);
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

void u64set_free(struct u64set *s)
{
    free(s->slots);
    *s = (struct u64set){ 0 };
}

bool u64set_has(const struct u64set *s, uint64_t v)
{
    if (!s->n || !v)
        return false;
    size_t i = slot_of(v, s->cap);
    while (s->slots[i]) {
        if (s->slots[i] == v)
            return true;
        i = (i + 1) & (s->cap - 1);
    }
    return false;
}

int u64set_add(struct u64set *s, uint64_t v)
{
    if (!v)
        return -EINVAL;
    if (u64set_has(s, v))
        return 0;
    if ((s->n + 1) * 4 > s->cap * 3 && grow(s) != 0)     /* at most 3/4 full */
        return -ENOMEM;
    put(s->slots, s->cap, v);
    s->n++;
    return 0;
}

bool u64set_remove(struct u64set *s, uint64_t v)
{
    if (!u64set_has(s, v))
        return false;
    size_t mask = s->cap - 1, i = slot_of(v, s->cap);
    while (s->slots[i] != v)
        i = (i + 1) & mask;
    /* free slot i, then move back each later entry of the run whose home
     * is not cyclically within (i, j] */
    for (size_t j = (i + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
        size_t home = slot_of(s->slots[j], s->cap);
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i] = 0;
    s->n--;
    return true;
}
