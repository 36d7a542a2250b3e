/*
 * u64set.h - a set of nonzero 64-bit numbers (inode numbers): add, remove,
 * ask, in constant time on average (open addressing, linear probing).
 *
 * Not thread-safe: the owner's lock guards it.  Used by cache/meta.c for
 * the entries it keeps whatever the cloud says (meta_hold).
 */
#ifndef SKY_U64SET_H
#define SKY_U64SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct u64set {
    uint64_t *slots;        /* 0: free; a power of two of them, or NULL */
    size_t cap, n;
};

/* An empty set needs no init: struct u64set s = { 0 }. */
void u64set_free(struct u64set *s);
/* Add v (nonzero): 0, or -ENOMEM (the set is unchanged).  Adding a
 * member again changes nothing. */
int u64set_add(struct u64set *s, uint64_t v);
/* Remove v: whether it was there. */
bool u64set_remove(struct u64set *s, uint64_t v);
bool u64set_has(const struct u64set *s, uint64_t v);

#endif
