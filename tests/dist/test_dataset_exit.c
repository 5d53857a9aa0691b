/* Bad input stops the whole job with exit code 2 and one message: runs
 * `mpiexec -n 2 dist_mpi_bad_input --exit FILE` (and --exit-last) and checks
 * mpiexec's exit status and the output. This process never initialises MPI,
 * so the mpiexec it starts is a fresh job. */
#include "testutil.h"

#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dataset_fixture.h"

static char g_dir[512];
static char g_prog[1024];

/* Runs the job; returns mpiexec's exit status, the output in out. */
static int run_job(const char *arg1, const char *arg2, char *out, size_t outlen) {
    char log[700];
    fx_path(log, sizeof log, g_dir, "job.log");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        const char *argv[12];
        int n = 0;
        argv[n++] = "mpiexec";
        argv[n++] = "--oversubscribe";
        if (geteuid() == 0)
            argv[n++] = "--allow-run-as-root";
        argv[n++] = "-n";
        argv[n++] = "2";
        argv[n++] = g_prog;
        argv[n++] = arg1;
        if (arg2)
            argv[n++] = arg2;
        argv[n] = NULL;
        execvp("mpiexec", (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    FILE *f = fopen(log, "r");
    size_t got = f ? fread(out, 1, outlen - 1, f) : 0;
    out[got] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_bad_file_exits_2(void **state) {
    char path[700];
    fx_path(path, sizeof path, g_dir, "bad.h5");
    fx_spec sp = fx_image_spec();
    fx_write(path, &sp);
    fx_set_int(path, "/test/labels", 4, 77);
    char out[16384];
    int rc = run_job("--exit", path, out, sizeof out);
    if (rc == 127)
        skip();
    if (rc != 2)
        fail_msg("mpiexec returned %d, want 2; output:\n%s", rc, out);
    assert_int_equal(count(out, "heed: error: "), 1);
    assert_non_null(strstr(out, "/test/labels: label 77 at row 4 is outside [0, 10)"));
}

static void test_one_rank_fails_all_exit_2(void **state) {
    char out[16384];
    int rc = run_job("--exit-last", NULL, out, sizeof out);
    if (rc == 127)
        skip();
    if (rc != 2)
        fail_msg("mpiexec returned %d, want 2; output:\n%s", rc, out);
    assert_int_equal(count(out, "heed: error: only the last rank saw this"), 1);
}

static void test_valid_file_exits_0(void **state) {
    char path[700];
    fx_path(path, sizeof path, g_dir, "good.h5");
    fx_spec sp = fx_text_spec();
    fx_write(path, &sp);
    char out[16384];
    int rc = run_job("--exit", path, out, sizeof out);
    if (rc == 127)
        skip();
    if (rc != 0)
        fail_msg("mpiexec returned %d, want 0; output:\n%s", rc, out);
}

static int setup(void **state) {
    fx_tmpdir(g_dir, sizeof g_dir);
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    snprintf(g_prog, sizeof g_prog, "%s/dist_mpi_bad_input", dirname(self));
    return access(g_prog, X_OK) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    fx_rmtree(g_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_file_exits_2),
        cmocka_unit_test(test_one_rank_fails_all_exit_2),
        cmocka_unit_test(test_valid_file_exits_0),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
