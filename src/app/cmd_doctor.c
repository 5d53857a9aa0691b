/*
 * cmd_doctor.c - `heed doctor`: preflight checks of the machine and the job,
 * before hours of queueing are spent on a run that cannot work or runs slow.
 *
 * Run it exactly as the training will run (same mpirun or srun line, same
 * binding flags): every rank reports its host, cores and CPU binding; rank 0
 * prints the MPI library and thread level, ranks per host, OpenBLAS's core
 * type and threads, whether HDF5 is parallel, and checks the output
 * directory (writable by every rank, one shared file system, a collective
 * parallel-HDF5 write into it works). Warnings do not fail; a failed check
 * exits with HEED_EXIT_BAD_INPUT.
 *
 *   mpirun -n 4 heed doctor --out runs [--threads N]
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */

#include "app/commands.h"

#include "app/blas_kernel.h"

#include "core/check.h"
#include "dist/check_dist.h"
#include "dist/comm.h"

#include <errno.h>
#include <hdf5.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* OpenBLAS's own calls; the cblas.h of other BLAS builds lacks them. */
char *openblas_get_corename(void);
char *openblas_get_config(void);
int openblas_get_num_threads(void);
int openblas_get_parallel(void);

enum { HOST_LEN = 64, CPUS_LEN = 96, PATH_LEN = 512 };

/* What each rank tells rank 0 about itself. */
typedef struct rank_info {
    char host[HOST_LEN];
    char cpus[CPUS_LEN]; /* the affinity mask as a list, e.g. "0-3,8" */
    int cores_online;    /* cores of the host */
    int cores_bound;     /* cores this rank may run on */
    int blas_threads;    /* OpenBLAS's default (environment or all cores) */
    int heed_threads;    /* what `heed train` would use: --threads or cores / ranks here */
    int local_size;
    int cores_per_rank;    /* cores of the host / ranks on it */
    int sees_probe;        /* the probe file rank 0 wrote is visible here */
    int can_write;         /* this rank could create a file in the directory */
    char blas_advice[320]; /* blas_kernel_check's advice, empty when the kernels fit */
} rank_info;

/* "0-3,8,10-11" from a CPU set; truncated with "..." when long. */
static void cpu_list(const cpu_set_t *set, char *out, size_t len) {
    size_t used = 0;
    out[0] = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, set))
            continue;
        int end = c;
        while (end + 1 < CPU_SETSIZE && CPU_ISSET(end + 1, set))
            end++;
        char part[32];
        int n = end > c ? snprintf(part, sizeof part, "%s%d-%d", used ? "," : "", c, end)
                        : snprintf(part, sizeof part, "%s%d", used ? "," : "", c);
        if (used + (size_t)n + 4 >= len) {
            snprintf(out + used, len - used, "...");
            return;
        }
        memcpy(out + used, part, (size_t)n + 1);
        used += (size_t)n;
        c = end;
    }
}

static void gather_self(rank_info *me, const comm *c, int threads_opt) {
    memset(me, 0, sizeof *me);
    if (gethostname(me->host, sizeof me->host - 1) != 0)
        snprintf(me->host, sizeof me->host, "?");
    me->cores_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        me->cores_bound = CPU_COUNT(&set);
        cpu_list(&set, me->cpus, sizeof me->cpus);
    } else {
        me->cores_bound = me->cores_online;
        snprintf(me->cpus, sizeof me->cpus, "? (%s)", strerror(errno));
    }
    me->blas_threads = openblas_get_num_threads();
    blas_kernel_check(me->blas_advice, sizeof me->blas_advice);
    me->local_size = c->local_size;
    /* As heed train's default: cores / ranks here, at most the bound cores. */
    int t = me->cores_online / (c->local_size ? c->local_size : 1);
    me->cores_per_rank = t;
    if (me->cores_bound < t)
        t = me->cores_bound;
    if (threads_opt > 0)
        t = threads_opt;
    me->heed_threads = t > 0 ? t : 1;
}

static const char *thread_level_name(int level) {
    switch (level) {
    case MPI_THREAD_SINGLE:
        return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
        return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
        return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE:
        return "MPI_THREAD_MULTIPLE";
    }
    return "unknown";
}

static const char *blas_parallel_name(int p) {
    return p == 0 ? "sequential" : p == 1 ? "pthreads" : p == 2 ? "OpenMP" : "unknown";
}

/* Rank 0: the MPI, BLAS and HDF5 section. */
static void print_libraries(const comm *c, int provided) {
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0, major = 0, minor = 0;
    HEED_MPI_CHECK(MPI_Get_library_version(lib, &len));
    HEED_MPI_CHECK(MPI_Get_version(&major, &minor));
    char *nl = strchr(lib, '\n');
    if (nl)
        *nl = 0;
    printf("MPI:      %s (standard %d.%d)\n", lib, major, minor);
    printf("          thread level %s (heed needs MPI_THREAD_FUNNELED, --comm-thread "
           "MPI_THREAD_SERIALIZED)\n",
           thread_level_name(provided));
    printf("          %d rank%s on %d host%s\n", c->size, c->size > 1 ? "s" : "", c->num_nodes,
           c->num_nodes > 1 ? "s" : "");
    printf("OpenBLAS: core %s, %s threading; %s\n", openblas_get_corename(),
           blas_parallel_name(openblas_get_parallel()), openblas_get_config());
    unsigned hmaj = 0, hmin = 0, hrel = 0;
    H5get_libversion(&hmaj, &hmin, &hrel);
#ifdef H5_HAVE_PARALLEL
    const char *par = "parallel (MPI-IO): collective checkpoints work";
#else
    const char *par = "SERIAL: heed needs the parallel build (libhdf5-openmpi-dev)";
#endif
    printf("HDF5:     %u.%u.%u, %s\n", hmaj, hmin, hrel, par);
}

/* Rank 0: the per-rank table and the oversubscription warnings. Returns
 * the number of warnings. */
static int print_ranks(const rank_info *all, int size) {
    int warnings = 0;
    printf("\nrank  host                      cores  bound to        BLAS default  heed threads\n");
    for (int r = 0; r < size; r++) {
        const rank_info *x = &all[r];
        printf("%4d  %-24.24s  %5d  %-14.14s  %12d  %12d\n", r, x->host, x->cores_online, x->cpus,
               x->blas_threads, x->heed_threads);
    }
    printf("\n");
    /* Per host: ranks x threads against cores, and each rank's binding. */
    for (int r = 0; r < size; r++) {
        bool first = true;
        for (int q = 0; q < r; q++)
            first &= strcmp(all[q].host, all[r].host) != 0;
        if (!first)
            continue;
        int ranks = 0;
        for (int q = 0; q < size; q++)
            ranks += !strcmp(all[q].host, all[r].host);
        const rank_info *x = &all[r];
        printf("host %s: %d rank%s, %d cores, %d heed thread%s per rank\n", x->host, ranks,
               ranks > 1 ? "s" : "", x->cores_online, x->heed_threads,
               x->heed_threads > 1 ? "s" : "");
        if ((long)ranks * x->heed_threads > x->cores_online) {
            printf("WARNING: host %s: %d ranks x %d threads = %d > %d cores: oversubscribed, "
                   "lower --threads or the ranks per host\n",
                   x->host, ranks, x->heed_threads, ranks * x->heed_threads, x->cores_online);
            warnings++;
        }
        if (x->blas_advice[0]) {
            printf("WARNING: host %s: %s\n", x->host, x->blas_advice);
            warnings++;
        }
        if ((long)ranks * x->blas_threads > x->cores_online) {
            printf("note: host %s: OpenBLAS's own default (%d threads, from OPENBLAS_NUM_THREADS, "
                   "OMP_NUM_THREADS or the core count) x %d ranks exceeds the %d cores; heed "
                   "train sets its threads itself, other programs in this job would not\n",
                   x->host, x->blas_threads, ranks, x->cores_online);
        }
    }
    for (int r = 0; r < size; r++) {
        const rank_info *x = &all[r];
        if (x->cores_bound < x->cores_per_rank && x->heed_threads <= x->cores_bound)
            printf("note: rank %d is bound to %d core%s (%s) of the %d its host has per rank: heed "
                   "train runs %d thread%s; mpirun --bind-to none or --map-by slot:PE=%d gives it "
                   "all\n",
                   r, x->cores_bound, x->cores_bound > 1 ? "s" : "", x->cpus, x->cores_per_rank,
                   x->heed_threads, x->heed_threads > 1 ? "s" : "", x->cores_per_rank);
        if (x->heed_threads > x->cores_bound) {
            printf("WARNING: rank %d is bound to %d core%s (%s) but would run %d threads on them: "
                   "use mpirun --bind-to none, or --map-by slot:PE=%d (srun --cpus-per-task=%d), "
                   "or --threads %d\n",
                   r, x->cores_bound, x->cores_bound > 1 ? "s" : "", x->cpus, x->heed_threads,
                   x->heed_threads, x->heed_threads, x->cores_bound);
            warnings++;
        }
    }
    return warnings;
}

static bool make_dir_path(const char *path) {
    char buf[PATH_LEN];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return false;
            *p = '/';
        }
    }
    return !(mkdir(buf, 0777) && errno != EEXIST);
}

/* A collective parallel-HDF5 write of one small dataset, each rank its own
 * row, into dir: what a checkpoint does. Returns true on success (on every
 * rank: the verdict is reduced). */
static bool check_parallel_hdf5(const comm *c, const char *path) {
    bool ok = true;
    H5E_auto2_t old_func;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    ok &= fapl >= 0 && H5Pset_fapl_mpio(fapl, c->mpi, MPI_INFO_NULL) >= 0;
    hid_t file = ok ? H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : -1;
    ok &= file >= 0;
    if (ok) {
        hsize_t dims[2] = {(hsize_t)c->size, 4};
        hid_t space = H5Screate_simple(2, dims, NULL);
        hid_t dset =
            H5Dcreate2(file, "probe", H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t start[2] = {(hsize_t)c->rank, 0}, count[2] = {1, 4};
        hid_t mem = H5Screate_simple(2, count, NULL);
        ok &= space >= 0 && dset >= 0 && mem >= 0 &&
              H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL) >= 0;
        hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
        ok &= dxpl >= 0 && H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) >= 0;
        int row[4] = {c->rank, c->rank, c->rank, c->rank};
        ok &= ok && H5Dwrite(dset, H5T_NATIVE_INT, mem, space, dxpl, row) >= 0;
        if (dxpl >= 0)
            H5Pclose(dxpl);
        if (mem >= 0)
            H5Sclose(mem);
        if (dset >= 0)
            H5Dclose(dset);
        if (space >= 0)
            H5Sclose(space);
        ok &= H5Fclose(file) >= 0;
    }
    if (fapl >= 0)
        H5Pclose(fapl);
    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
    int mine = ok, all = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, c->mpi));
    return all != 0;
}

/* Every rank: can it write into dir, and does it see rank 0's probe file
 * (one shared file system, as collective checkpoints need)? Rank 0 prints.
 * Returns the number of failed checks (the same on every rank). */
static int check_out_dir(const comm *c, const char *dir, rank_info *me, rank_info *all) {
    int failed = 0;
    char probe[PATH_LEN + 64], mine[PATH_LEN + 64];
    snprintf(probe, sizeof probe, "%s/.heed-doctor-probe", dir);
    int made = 1;
    if (c->rank == 0) {
        made = make_dir_path(dir);
        FILE *f = made ? fopen(probe, "w") : NULL;
        made = f != NULL && fputs("heed doctor\n", f) >= 0;
        if (f && fclose(f) != 0)
            made = 0;
        if (!made)
            printf("FAILED:   output directory %s: cannot create or write it: %s\n", dir,
                   strerror(errno));
    }
    HEED_MPI_CHECK(MPI_Bcast(&made, 1, MPI_INT, 0, c->mpi));
    if (!made)
        return 1;
    me->sees_probe = access(probe, R_OK) == 0;
    snprintf(mine, sizeof mine, "%s/.heed-doctor-rank%d", dir, c->rank);
    FILE *f = fopen(mine, "w");
    me->can_write = f != NULL;
    if (f) {
        fclose(f);
        unlink(mine);
    }
    HEED_MPI_CHECK(MPI_Gather(me, sizeof *me, MPI_BYTE, all, sizeof *me, MPI_BYTE, 0, c->mpi));
    HEED_MPI_CHECK(MPI_Barrier(c->mpi)); /* everyone has looked before the probe goes */
    if (c->rank == 0) {
        unlink(probe);
        struct statvfs vfs;
        if (statvfs(dir, &vfs) == 0)
            printf("output:   %s: writable, %.1f GiB free\n", dir,
                   (double)vfs.f_bavail * (double)vfs.f_frsize / (1024.0 * 1024.0 * 1024.0));
        for (int r = 0; r < c->size; r++) {
            if (!all[r].sees_probe) {
                printf("FAILED:   rank %d (%s) does not see %s: the output directory must be on a "
                       "file system shared by all hosts (checkpoints are written collectively)\n",
                       r, all[r].host, dir);
                failed++;
            } else if (!all[r].can_write) {
                printf("FAILED:   rank %d (%s) cannot write into %s\n", r, all[r].host, dir);
                failed++;
            }
        }
    }
    HEED_MPI_CHECK(MPI_Bcast(&failed, 1, MPI_INT, 0, c->mpi));
    if (failed)
        return failed;
    char h5[PATH_LEN + 64];
    snprintf(h5, sizeof h5, "%s/.heed-doctor-probe.h5", dir);
    bool h5_ok = check_parallel_hdf5(c, h5);
    if (c->rank == 0) {
        printf("          collective parallel-HDF5 write into %s: %s\n", dir,
               h5_ok ? "ok" : "FAILED (checkpoints will fail there; is MPI-IO locking supported?)");
        unlink(h5);
    }
    return h5_ok ? 0 : 1;
}

static int parse_args(int argc, char **argv, const char **out, int *threads, const comm *c) {
    for (int i = 0; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if (!strcmp(argv[i], "--out") && has_value) {
            *out = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && has_value) {
            char *end = NULL;
            long t = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || t < 0 || t > 4096) {
                if (c->rank == 0)
                    fprintf(stderr, "heed doctor: --threads expects an integer >= 0, got '%s'\n",
                            argv[i]);
                return HEED_EXIT_BAD_INPUT;
            }
            *threads = (int)t;
        } else if (!strcmp(argv[i], "--help")) {
            if (c->rank == 0)
                printf("usage: [mpirun -n N] heed doctor [--out RUNDIR] [--threads N]\n"
                       "  --out      the run directory to check (default: runs)\n"
                       "  --threads  the --threads you will give heed train (default: cores per "
                       "rank)\n");
            return -1;
        } else {
            if (c->rank == 0)
                fprintf(stderr, "heed doctor: unknown or incomplete option '%s' (see --help)\n",
                        argv[i]);
            return HEED_EXIT_BAD_INPUT;
        }
    }
    return HEED_EXIT_OK;
}

int cmd_doctor(int argc, char **argv) {
    int provided = 0;
    HEED_MPI_CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided));
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    const char *out = "runs";
    int threads = 0;
    int code = parse_args(argc, argv, &out, &threads, &c);
    if (code != HEED_EXIT_OK) {
        comm_free(&c);
        HEED_MPI_CHECK(MPI_Finalize());
        return code < 0 ? HEED_EXIT_OK : code;
    }
    if (strlen(out) >= PATH_LEN) {
        if (c.rank == 0)
            fprintf(stderr, "heed doctor: --out is longer than %d characters\n", PATH_LEN - 1);
        comm_free(&c);
        HEED_MPI_CHECK(MPI_Finalize());
        return HEED_EXIT_BAD_INPUT;
    }
    rank_info me;
    gather_self(&me, &c, threads);
    rank_info *all = c.rank == 0 ? xcalloc((size_t)c.size, sizeof *all) : NULL;
    HEED_MPI_CHECK(MPI_Gather(&me, sizeof me, MPI_BYTE, all, sizeof me, MPI_BYTE, 0, c.mpi));
    int warnings = 0;
    if (c.rank == 0) {
        printf("heed doctor\n");
        print_libraries(&c, provided);
        warnings = print_ranks(all, c.size);
        if (provided < MPI_THREAD_FUNNELED) {
            printf("WARNING: the MPI library gives only %s; heed's prefetch and watchdog "
                   "threads need MPI_THREAD_FUNNELED\n",
                   thread_level_name(provided));
            warnings++;
        } else if (provided < MPI_THREAD_SERIALIZED) {
            printf("WARNING: the MPI library gives only %s; heed train's --comm-thread (on from "
                   "8 ranks by default) needs MPI_THREAD_SERIALIZED and falls back to the "
                   "backward hook\n",
                   thread_level_name(provided));
            warnings++;
        }
#ifndef H5_HAVE_PARALLEL
        warnings++;
#endif
    }
    int failed = check_out_dir(&c, out, &me, all);
    if (c.rank == 0) {
        printf("\n%s: %d warning%s, %d failed check%s\n", failed ? "NOT READY" : "ready", warnings,
               warnings == 1 ? "" : "s", failed, failed == 1 ? "" : "s");
        fflush(stdout);
    }
    free(all);
    comm_free(&c);
    HEED_MPI_CHECK(MPI_Finalize());
    return failed ? HEED_EXIT_BAD_INPUT : HEED_EXIT_OK;
}
