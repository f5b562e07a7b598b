/* `uakd train` / `uakd eval` for the SPNv2 heatmap family on SPEED+ (cmd_spn.c); cmd_train.c and
 * cmd_eval.c hand over to these when the family is spnv2. */
#ifndef UAKD_CLI_SPN_H
#define UAKD_CLI_SPN_H

/* 1 when argv holds "--family spnv2" (or --family=spnv2). Exits nothing. */
int spn_cli_family(int argc, char **argv);
/* 1 when argv's --model is an SPNv2 model directory (config.json "family": "spnv2"). */
int spn_cli_model_is(int argc, char **argv);
int spn_cmd_train(int argc, char **argv);
/* The options of `uakd train --family spnv2` (argv[0] is skipped) into c (defaults first). */
struct uakd_spn_train_config;
int spn_train_parse(int argc, char **argv, struct uakd_spn_train_config *c);
/* Runs c with the progress line and Ctrl-C handling; returns the exit code. */
int spn_train_run_cli(const char *cmd, struct uakd_spn_train_config *c);
/* `uakd ensemble --family spnv2` and `uakd distill --family spnv2` (cmd_spn_distill.c). */
int spn_cmd_ensemble(int argc, char **argv);
int spn_cmd_distill(int argc, char **argv);
/* `uakd ablate --family spnv2` (cmd_spn_ablate.c). */
int spn_cmd_ablate(int argc, char **argv);
int spn_cmd_eval(int argc, char **argv);

#endif
