// cmd:COMMAND — runs /bin/sh -c COMMAND per item, writes {"prompt","completion","answer"} and a
// newline on its stdin, reads {"score": x} from its stdout. The process (its whole process group)
// is killed when it runs longer than timeout_s. A non-zero exit status is a failure.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/timer.h"
#include "reward/checker.h"

#define MAX_OUTPUT (64 * 1024)

typedef struct {
    char *command;
} Cmd;

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Kills the command's process group (its children too) and, should the group not exist, the
// process itself, so the blocking waitpid that follows returns.
static void kill_command(pid_t pid) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

static int score_cmd(RewardChecker *c, const char *prompt, const char *completion, const char *answer,
                     RewardResult *out) {
    Cmd *cmd = c->state;
    char *body = checker_request_json(prompt, completion, answer);
    char *buf = malloc(MAX_OUTPUT + 1);
    if (!body || !buf) {
        free(body);
        free(buf);
        snprintf(out->reason, sizeof out->reason, "cmd: out of memory");
        return REWARD_FAILED;
    }
    size_t body_len = strlen(body);
    body[body_len] = '\n';  // replaces the NUL: the JSON line ends with a newline
    int in[2], outp[2];
    // O_CLOEXEC: a child started by another thread at the same moment must not inherit these ends,
    // or our reader would never see end-of-file.
    if (pipe2(in, O_CLOEXEC) != 0) {
        free(body), free(buf);
        snprintf(out->reason, sizeof out->reason, "cmd: pipe: %s", strerror(errno));
        return REWARD_FAILED;
    }
    if (pipe2(outp, O_CLOEXEC) != 0) {
        close(in[0]), close(in[1]), free(body), free(buf);
        snprintf(out->reason, sizeof out->reason, "cmd: pipe: %s", strerror(errno));
        return REWARD_FAILED;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]), close(in[1]), close(outp[0]), close(outp[1]), free(body), free(buf);
        snprintf(out->reason, sizeof out->reason, "cmd: fork: %s", strerror(errno));
        return REWARD_FAILED;
    }
    if (pid == 0) {
        // Child: only async-signal-safe calls until exec.
        setpgid(0, 0);
        dup2(in[0], 0);
        dup2(outp[1], 1);
        execl("/bin/sh", "sh", "-c", cmd->command, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);  // also from the parent, so the group exists before we might kill it
    close(in[0]);
    close(outp[1]);
    int wfd = in[1], rfd = outp[0];
    set_nonblock(wfd);
    set_nonblock(rfd);
    size_t written = 0, got = 0;
    int overflow = 0, timed_out = 0;
    double deadline = time_now() + c->opt.timeout_s;
    // Feed stdin and drain stdout together, so a command that writes before reading cannot deadlock.
    while (rfd >= 0) {
        double left = deadline - time_now();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd fds[2];
        int nf = 0, ri = -1, wi = -1;
        fds[nf] = (struct pollfd){rfd, POLLIN, 0}, ri = nf++;
        if (wfd >= 0) fds[nf] = (struct pollfd){wfd, POLLOUT, 0}, wi = nf++;
        int pr = poll(fds, (nfds_t)nf, (int)(left * 1000) + 1);
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) continue;
        if (wi >= 0 && fds[wi].revents) {
            if (fds[wi].revents & (POLLERR | POLLHUP)) {
                close(wfd), wfd = -1;  // the command does not read its input: fine
            } else {
                ssize_t w = write(wfd, body + written, body_len + 1 - written);  // + the newline slot
                if (w > 0) written += (size_t)w;
                else if (w < 0 && errno != EAGAIN && errno != EINTR) close(wfd), wfd = -1;
                if (wfd >= 0 && written >= body_len + 1) close(wfd), wfd = -1;
            }
        }
        if (fds[ri].revents) {
            ssize_t r = read(rfd, buf + got, MAX_OUTPUT - got);
            if (r > 0) {
                got += (size_t)r;
                if (got >= MAX_OUTPUT) {
                    overflow = 1;
                    break;
                }
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(rfd), rfd = -1;
            }
        }
    }
    if (wfd >= 0) close(wfd);
    if (rfd >= 0) close(rfd);
    int status = 0;
    if (timed_out || overflow) kill_command(pid);
    // The command closed stdout; give it until the deadline to exit, then kill it.
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) break;
        if (time_now() > deadline) {
            timed_out = 1;
            kill_command(pid);
            waitpid(pid, &status, 0);
            break;
        }
        struct timespec ts = {0, 1000000};  // 1 ms
        nanosleep(&ts, NULL);
    }
    buf[got] = 0;
    free(body);
    int st;
    if (timed_out) {
        st = REWARD_TIMEOUT;
        snprintf(out->reason, sizeof out->reason, "cmd: timed out after %.3g s", c->opt.timeout_s);
    } else if (overflow) {
        st = REWARD_FAILED;
        snprintf(out->reason, sizeof out->reason, "cmd: output longer than %d bytes", MAX_OUTPUT);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        st = REWARD_FAILED;
        snprintf(out->reason, sizeof out->reason, "cmd: exit status %d",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    } else {
        st = checker_parse_reply(buf, out);
    }
    free(buf);
    return st;
}

static void destroy_cmd(RewardChecker *c) {
    Cmd *cmd = c->state;
    if (cmd) free(cmd->command);
    free(cmd);
}

int checker_cmd_init(RewardChecker *c, const char *command, Error *err) {
    if (!*command) return error_set(err, "reward: cmd: needs a command (cmd:COMMAND)");
    // A command that exits without reading its stdin must not kill us with SIGPIPE. Only the
    // default disposition is changed; a handler the program installed is left alone.
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
    Cmd *cmd = calloc(1, sizeof *cmd);
    if (!cmd || !(cmd->command = strdup(command))) {
        free(cmd);
        return error_set(err, "reward: out of memory");
    }
    c->state = cmd;
    c->score = score_cmd;
    c->destroy = destroy_cmd;
    c->io_bound = 1;
    return 0;
}
