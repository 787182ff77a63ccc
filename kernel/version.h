/* hv86 version string; HV86_GIT is passed by the Makefile when known. */
#ifndef HV86_KERNEL_VERSION_H
#define HV86_KERNEL_VERSION_H
#define HV86_VERSION "0.1.0"
#ifndef HV86_GIT
#define HV86_GIT "unknown"
#endif
#endif
