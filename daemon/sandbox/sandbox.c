/* SPDX-License-Identifier: MIT */
/* The sandbox for untrusted input: every interpreter the daemon runs (the
 * compile workers, and verify's marshal checker) starts here, in the child
 * of a fork from a multi-threaded process — so only async-signal-safe calls
 * until execve(). It gets exactly two descriptors, no core dumps, no file
 * writes at all (RLIMIT_FSIZE 0: it talks only through its pipes), a memory
 * limit, the worker user with no supplementary groups, no way to gain
 * privileges again, and death with its parent.
 *
 * The order matters. The death signal is set after the credential change,
 * because changing uid or gid clears it; and it only covers a parent that
 * is still alive when it is set, so the child then checks that its parent
 * is still the daemon: if the daemon died in between, the child was
 * re-parented and must not start at all. The worker user is one no other
 * process runs as (see workeruser.c), so nothing but root can signal or
 * ptrace the child; the interpreter code also makes itself non-dumpable,
 * which exec would undo if we did it here. */

#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

static void close_all_from(int first) {
#ifdef SYS_close_range
        if (syscall(SYS_close_range, (unsigned)first, ~0u, 0u) == 0)
                return;
#endif
        for (int fd = first; fd < 65536; fd++)
                (void)close(fd);
}

void sandbox_exec(pid_t parent, int in_fd, int out_fd, const SandboxOptions *o, const char *path,
                  char **argv, char **envp) {
        struct rlimit rl = { 0, 0 };
        sigset_t none;

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                _exit(126);
        /* An interpreter of another root runs in it, as a process of that
         * root would: its own libraries and standard library, its paths.
         * While we are still root, and before the root's fd is closed. */
        if (o->chroot && (fchdir(o->root_fd) < 0 || chroot(".") < 0 || chdir("/") < 0))
                _exit(126);
        if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
                _exit(126);
        close_all_from(3);

        (void)setrlimit(RLIMIT_CORE, &rl);
        (void)setrlimit(RLIMIT_FSIZE, &rl);
        /* It keeps two descriptors: no need for the daemon's large limit. */
        rl = (struct rlimit){ 64, 64 };
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        rl = (struct rlimit){ 0, 0 };
        if (o->memory_limit > 0) {
                rl = (struct rlimit){ o->memory_limit, o->memory_limit };
                (void)setrlimit(RLIMIT_AS, &rl);
        }
        if (o->cpu_limit > 0) {
                /* SIGXCPU at the soft limit, SIGKILL a second later. */
                rl = (struct rlimit){ o->cpu_limit, o->cpu_limit + 1 };
                (void)setrlimit(RLIMIT_CPU, &rl);
        }
        if (o->uid != (uid_t)-1 && (setgroups(0, NULL) < 0 || setresgid(o->gid, o->gid, o->gid) < 0 ||
                                    setresuid(o->uid, o->uid, o->uid) < 0))
                _exit(126);

        /* After the credential change, which clears it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                _exit(126);
        if (getppid() != parent)
                _exit(126);

        /* The daemon blocks signals for sd-event; the child must not. */
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        _exit(127);
}
