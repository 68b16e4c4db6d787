/*
 * version.h - the one place the version is written.
 */
#ifndef CB_VERSION_H
#define CB_VERSION_H

#define CERTBRIDGE_VERSION "0.1.0"

#endif
