/*
 * commands.h - the subcommands of `heed`; each returns the exit code.
 */
#ifndef HEED_APP_COMMANDS_H
#define HEED_APP_COMMANDS_H

int cmd_train(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

#endif
