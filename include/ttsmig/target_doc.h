/*
 * target_doc.h - what the target must hold for a device of a batch: the
 * device copy transformed for the target (device_transform) and split into
 * the four registry bodies (device_split), as apply sends them and
 * verify and reconcile expect them.
 */
#ifndef TTSMIG_TARGET_DOC_H
#define TTSMIG_TARGET_DOC_H

#include <cJSON.h>

#include "ttsmig/batch.h"
#include "ttsmig/devcopy.h"
#include "ttsmig/device.h"
#include "ttsmig/err.h"

struct target_doc {
	cJSON *doc;                 /* the transformed device (owned) */
	struct device_split create; /* registry bodies, IS in its create form */
	struct device_split update; /* the same, IS in its update form (with a mask) */
};

/* Build it; ERR_REFUSED from device_transform when the scenario cannot
 * move the device; abp-new needs c->new_session. */
int target_doc_build(const struct batch *b, const struct devcopy *c, struct target_doc *out,
                     struct err *e) __attribute__((warn_unused_result));
void target_doc_release(struct target_doc *t);

/*
 * The field-mask paths of a registry body (borrowed strings in a malloc'ed,
 * NULL-terminated array).  A body with nothing but its identifiers names
 * the identifiers, which every Set accepts, so the registry's record is
 * still created.
 */
const char **target_doc_paths(const cJSON *body);

/*
 * Of those, the ones registry r returns on Get (some, e.g. the NS's
 * serial_number, may be set but not read): the mask of a read-back.  The
 * identifiers are always kept.  Same ownership as target_doc_paths.
 */
const char **target_doc_read_paths(enum registry r, const cJSON *body);
/* The others: what a comparison of a read-back must skip, followed by
 * `extra` (NULL-terminated, may be NULL).  Same ownership. */
const char **target_doc_unread_paths(enum registry r, const cJSON *body, const char *const *extra);

#endif
