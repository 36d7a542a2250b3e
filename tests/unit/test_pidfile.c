/* test_pidfile.c - how `skyfs unmount` recognises its daemon: the start
 * time read from /proc/PID/stat (a command name may hold ") " and digits),
 * zombies and gone processes, and mountpoints made absolute from the text. */
#include "check.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../fs/pidfile.h"

TEST(pidfile_start_time_survives_odd_command_names)
{
    unsigned long long start = pidfile_process_start(getpid());
    CHECK(start > 0);
    char name[16] = "";
    prctl(PR_GET_NAME, name, 0, 0, 0);
    prctl(PR_SET_NAME, "x) 7 8 (y", 0, 0, 0);
    CHECK_INT(pidfile_process_start(getpid()), start);
    prctl(PR_SET_NAME, name, 0, 0, 0);

    struct pidfile_info me = { .pid = getpid(), .start_time = start };
    CHECK(pidfile_daemon_alive(&me));
    me.start_time = start + 1;           /* the pid, reused by another process */
    CHECK(!pidfile_daemon_alive(&me));
}

TEST(pidfile_zombies_and_gone_processes_are_not_alive)
{
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    struct pidfile_info info = { .pid = child };
    /* a zombie until reaped: its work is done */
    for (int i = 0; i < 500 && pidfile_process_start(child) != 0; i++) {
        struct timespec tick = { 0, 10 * 1000 * 1000 };
        nanosleep(&tick, NULL);
    }
    CHECK_INT(pidfile_process_start(child), 0);
    waitpid(child, NULL, 0);
    CHECK_INT(pidfile_process_start(child), 0);
    CHECK(!pidfile_daemon_alive(&info));
    info.pid = 0;
    CHECK(!pidfile_daemon_alive(&info));
}

TEST(pidfile_abspath_from_the_text_alone)
{
    char out[4096];
    pidfile_abspath("/srv/./clouds/../mnt/", out, sizeof out);
    CHECK_STR(out, "/srv/mnt");
    pidfile_abspath("/..", out, sizeof out);
    CHECK_STR(out, "/");
}
