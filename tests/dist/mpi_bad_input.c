/* Bad input across ranks: every rank gets the same verdict and the same
 * message, whichever rank found the problem (structure problems are found
 * by all; a bad label only by the rank whose share of the value scan holds
 * it), and nobody hangs.
 *
 * Run with an argument it exits the way heed does, for test_dataset_loader
 * to check the exit code of the whole job under mpiexec:
 *     --exit FILE   dataset_open(FILE); on bad input bad_input_exit (code 2)
 *     --exit-last   only the last rank fails, through bad_input_agree
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_fixture.h"
#include "dist/bad_input.h"
#include "dist/dataset.h"
#include "dist/loader.h"

#include "mpi_check.h"

static int g_rank, g_size;

/* The message is the same on every rank: compare with rank 0's. */
static void check_same_everywhere(const char *msg) {
    char root[HEED_BAD_INPUT_MSG_MAX];
    snprintf(root, sizeof root, "%s", msg);
    MPI_Bcast(root, sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
    CHECK(strcmp(root, msg) == 0, "rank 0 says\n  %s\nthis rank says\n  %s", root, msg);
}

static void expect_bad_file(const char *path, const char *want) {
    dataset *ds = (dataset *)1;
    char err[HEED_BAD_INPUT_MSG_MAX] = "";
    int rc = dataset_open(&ds, path, MPI_COMM_WORLD, NULL, err, sizeof err);
    CHECK(rc == HEED_EXIT_BAD_INPUT && ds == NULL, "rc %d", rc);
    CHECK(strstr(err, path) == err && strstr(err, want), "message\n  %s\nlacks\n  %s", err, want);
    check_same_everywhere(err);
}

static void test_agreement(void) {
    char out[HEED_BAD_INPUT_MSG_MAX];
    CHECK(!bad_input_any(MPI_COMM_WORLD, false, "unused", out, sizeof out), "nobody failed");
    /* ranks 1.. fail: rank 1 speaks (rank 0 alone when p = 1) */
    char mine[64];
    snprintf(mine, sizeof mine, "problem seen by rank %d", g_rank);
    int speaker = g_size > 1 ? 1 : 0;
    CHECK(bad_input_any(MPI_COMM_WORLD, g_rank >= speaker, mine, out, sizeof out), "agreed");
    char want[64];
    snprintf(want, sizeof want, "problem seen by rank %d", speaker);
    CHECK(strcmp(out, want) == 0, "got '%s' want '%s'", out, want);
    /* only the last rank fails, with no message */
    CHECK(bad_input_any(MPI_COMM_WORLD, g_rank == g_size - 1, NULL, out, sizeof out), "agreed");
    CHECK(strcmp(out, "unknown problem") == 0, "got '%s'", out);
    /* a long message is cut, terminated, and the same everywhere */
    char *longmsg = malloc(5000);
    memset(longmsg, 'x', 4999);
    longmsg[4999] = '\0';
    char small[32];
    CHECK(bad_input_any(MPI_COMM_WORLD, true, longmsg, small, sizeof small), "agreed");
    CHECK(strlen(small) == sizeof small - 1, "cut to fit");
    free(longmsg);
    bad_input_agree(MPI_COMM_WORLD, false, NULL); /* returns */
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (argc == 3 && strcmp(argv[1], "--exit") == 0) {
        dataset *ds = NULL;
        char err[HEED_BAD_INPUT_MSG_MAX];
        if (dataset_open(&ds, argv[2], MPI_COMM_WORLD, NULL, err, sizeof err))
            bad_input_exit(MPI_COMM_WORLD, err);
        dataset_close(ds);
        MPI_Finalize();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--exit-last") == 0) {
        bad_input_agree(MPI_COMM_WORLD, g_rank == g_size - 1, "only the last rank saw this");
        MPI_Finalize();
        return 0;
    }

    test_agreement();
    char dir[512] = "";
    fx_spec sp = fx_image_spec();
    sp.n[0] = 200;
    if (g_rank == 0) {
        fx_tmpdir(dir, sizeof dir);
        char p[600];
        fx_path(p, sizeof p, dir, "late_label.h5"); /* in the last rank's share */
        fx_write(p, &sp);
        fx_set_int(p, "/train/labels", 197, 10);
        fx_path(p, sizeof p, dir, "early_label.h5"); /* in rank 0's, and a later one */
        fx_write(p, &sp);
        fx_set_int(p, "/train/labels", 1, -4);
        fx_set_int(p, "/train/labels", 198, 11);
        fx_path(p, sizeof p, dir, "no_val.h5");
        fx_write(p, &sp);
        fx_delete(p, "/val");
        fx_path(p, sizeof p, dir, "ok.h5");
        fx_write(p, &sp);
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    char p[600];
    fx_path(p, sizeof p, dir, "late_label.h5");
    expect_bad_file(p, "/train/labels: label 10 at row 197 is outside [0, 10) (num_classes)");
    fx_path(p, sizeof p, dir, "early_label.h5");
    expect_bad_file(p, "/train/labels: label -4 at row 1 is outside [0, 10)");
    fx_path(p, sizeof p, dir, "no_val.h5");
    expect_bad_file(p, "/val: missing group");
    fx_path(p, sizeof p, dir, "missing.h5");
    expect_bad_file(p, "cannot open: No such file or directory");

    /* loader options: the same verdict everywhere */
    fx_path(p, sizeof p, dir, "ok.h5");
    dataset *ds = NULL;
    char err[HEED_BAD_INPUT_MSG_MAX];
    CHECK(dataset_open(&ds, p, MPI_COMM_WORLD, NULL, err, sizeof err) == 0, "%s", err);
    loader *l = (loader *)1;
    loader_options o = {.split = DATASET_SPLIT_TRAIN,
                        .sampler = {.batch_size = 8, .bucket_window = 2}};
    CHECK(loader_init(&l, ds, MPI_COMM_WORLD, &o, err, sizeof err) == HEED_EXIT_BAD_INPUT && !l,
          "bucketing images");
    CHECK(strstr(err, "/train: length bucketing needs"), "%s", err);
    check_same_everywhere(err);
    o.sampler.bucket_window = 0;
    o.start = (sampler_cursor){0, 1000};
    CHECK(loader_init(&l, ds, MPI_COMM_WORLD, &o, err, sizeof err) == HEED_EXIT_BAD_INPUT,
          "cursor");
    CHECK(strstr(err, "resume cursor epoch 0, position 1000 is outside the 200 samples"), "%s",
          err);
    dataset_close(ds);

    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        fx_rmtree(dir);
        printf("mpi_bad_input: %d ranks OK\n", g_size);
    }
    MPI_Finalize();
    return 0;
}
