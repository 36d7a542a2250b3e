/*
 * registry.c - the table of cloud kinds.
 *
 * Each driver file defines one `const struct sky_driver sky_driver_<type>`.
 * The table lists them in the order `skyfs config check` shows them.
 */
#include "driver.h"

#include <string.h>

extern const struct sky_driver sky_driver_local;
extern const struct sky_driver sky_driver_s3;
extern const struct sky_driver sky_driver_azure;
extern const struct sky_driver sky_driver_gcs;
extern const struct sky_driver sky_driver_swift;
extern const struct sky_driver sky_driver_webdav;
extern const struct sky_driver sky_driver_sftp;

static const struct sky_driver *const all_drivers[] = {
    &sky_driver_local,
    &sky_driver_s3,
    &sky_driver_azure,
    &sky_driver_gcs,
    &sky_driver_swift,
    &sky_driver_webdav,
    &sky_driver_sftp,
};

#define NDRIVERS (sizeof all_drivers / sizeof all_drivers[0])

const struct sky_driver *sky_driver_find(const char *type)
{
    for (size_t i = 0; i < NDRIVERS; i++)
        if (strcmp(all_drivers[i]->type, type) == 0)
            return all_drivers[i];
    return NULL;
}

const char *sky_driver_types(void)
{
    static char list[128];
    if (!list[0]) {
        for (size_t i = 0; i < NDRIVERS; i++) {
            if (!all_drivers[i])
                continue;
            if (list[0])
                strcat(list, ", ");
            strcat(list, all_drivers[i]->type);
        }
    }
    return list;
}
