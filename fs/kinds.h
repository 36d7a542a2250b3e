/*
 * kinds.h - telling drivers what the metadata cache already knows an
 * object version to be.
 *
 * Some clouds' listings do not say which objects are symlinks or special
 * files (S3: the kind travels in user metadata, which listings lack), so
 * their driver asks the cloud about each small or empty object it lists.
 * The metadata cache keeps each entry's kind and version (etag) across
 * remounts and `skyfs index` runs: kinds_register hands the driver a
 * sky_known_kind_fn (backends/driver.h) that answers from it, so a version
 * already seen costs no question.  Likewise a folder's attributes (S3: in
 * its marker "dir/", which a listing does not show): a sky_known_dir_fn
 * answers with a cached directory's attributes when they came from the
 * cloud, so a remount does not ask every folder again.
 *
 * Used by fs/clouds.c when it opens a cloud.  The answers read the cache
 * only (cache/meta.h is thread-safe); they never call a driver.
 */
#ifndef SKY_KINDS_H
#define SKY_KINDS_H

#include "skyfs.h"

/* Give cloud c's driver (opened: c->ctx set) the cache's answers, when the
 * driver takes them (set_known_kinds); c must outlive the driver's ctx. */
void kinds_register(struct cloud *c);

#endif
