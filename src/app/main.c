/*
 * main.c - the `heed` program: one binary, one subcommand per job.
 */
#include "app/commands.h"

#include "core/check.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out,
            "usage: heed COMMAND [options]\n\n"
            "commands:\n"
            "  train    --model NAME --data FILE.h5 [--config run.ini] [--out RUNDIR] ...\n"
            "  eval     --ckpt PATH --data FILE.h5 [--split test]   evaluate a checkpoint\n"
            "  export   CKPT --out FILE.h5   the parameters of a checkpoint alone\n"
            "  explain  --ckpt PATH --data FILE.h5 [--split test] --samples I..J --out DIR\n"
            "                                attention maps of chosen samples (HDF5, PNG, HTML)\n"
            "  inspect  FILE.h5              check a dataset against docs/data-format.md\n"
            "  models                        list models and their options\n"
            "  doctor   [--out RUNDIR]       preflight checks (run it under mpirun like the job)\n"
            "  tokenize --vocab vocab.txt    BERT WordPiece: text lines on stdin -> ids\n"
            "  help                          this text; `heed train --help` lists options\n\n"
            "exit codes: 0 ok, 1 internal error, 2 bad input, 3 preempted (checkpoint written),\n"
            "            4 hang or dead rank, 5 NaN/Inf in the loss\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return HEED_EXIT_BAD_INPUT;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train"))
        return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect"))
        return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval"))
        return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "explain"))
        return cmd_explain(argc - 2, argv + 2);
    if (!strcmp(cmd, "export"))
        return cmd_export(argc - 2, argv + 2);
    if (!strcmp(cmd, "models"))
        return cmd_models(argc - 2, argv + 2);
    if (!strcmp(cmd, "doctor"))
        return cmd_doctor(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize"))
        return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help")) {
        usage(stdout);
        return HEED_EXIT_OK;
    }
    fprintf(stderr, "heed: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return HEED_EXIT_BAD_INPUT;
}
