// Each `pionrl <command>` is one function in src/cli/cmd_<command>.c. It parses its own arguments,
// prints errors to stderr and returns the process exit code (0 ok, 1 runtime error, 2 usage error).
#ifndef PIONRL_COMMANDS_H
#define PIONRL_COMMANDS_H


int cmd_train(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_spectrum(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_reward(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_synth(int argc, char **argv);

#endif
