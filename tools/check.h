/* What nll check knows about input rows, shared with nll demo. */
#ifndef NLL_TOOL_CHECK_H
#define NLL_TOOL_CHECK_H

#include <stdint.h>

#include "formats.h"

/* The rows (samples) of an input along its class axis (dim 0 for 1-D, else dim 1), sorted by
 * what they look like. Rows holding NaN or +inf, or only -inf, are not counted. */
typedef struct classify_result {
    int64_t rows;                 /* rows examined */
    int64_t log_probability_rows; /* log-sum-exp within tolerance of 0 */
    int64_t probability_rows;     /* not log-probabilities; values in [0, 1] summing to 1 */
    double lse_min, lse_max;      /* log-sum-exp over the rows examined */
    int64_t first_not_log;        /* the first row that is not log-probabilities, or -1 */
    double first_not_log_lse;
} classify_result;

classify_result classify_input_rows(const fmt_array *input);

#endif /* NLL_TOOL_CHECK_H */
