/* `uakd train` / `uakd eval` for the SPNv2 heatmap family on SPEED+ (cmd_spn.c); cmd_train.c and
 * cmd_eval.c hand over to these when the family is spnv2. */
#ifndef UAKD_CLI_SPN_H
#define UAKD_CLI_SPN_H

/* 1 when argv holds "--family spnv2" (or --family=spnv2). Exits nothing. */
int spn_cli_family(int argc, char **argv);
/* 1 when argv's --model is an SPNv2 model directory (config.json "family": "spnv2"). */
int spn_cli_model_is(int argc, char **argv);
int spn_cmd_train(int argc, char **argv);
int spn_cmd_eval(int argc, char **argv);

#endif
