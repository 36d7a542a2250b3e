/* version.h - the skyfs version `skyfs --version` prints. */
#ifndef SKY_VERSION_H
#define SKY_VERSION_H

#define SKYFS_VERSION "0.3.0"

#endif
