/*
 * The console's built-in status and debug commands (kernel only): version,
 * uptime, date, mem, threads, disks, pci, log, stats, debug fault, and the
 * hidden test hooks echo and debug attach.
 */
#ifndef HV86_MGMT_SYSCMDS_H
#define HV86_MGMT_SYSCMDS_H

/* syscmds_register - add the table to the console registry. Returns 0 or the
 * cmd_register_table() error (E_EXIST: another module claims a name). Called
 * once by console_start(). */
int syscmds_register(void);

#endif
