/*
 * main.c - ttsmig's entry point; everything else lives in libttsmig.a.
 */
#include "ttsmig/cli.h"

int main(int argc, char **argv)
{
	return ttsmig_main(argc, argv);
}
