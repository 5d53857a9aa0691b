/* make_dataset OUT.h5: the small text dataset of tests/dist/dataset_fixture.h
 * (50/9/6 rows, 4 classes, vocabulary 50, length 12) for the end-to-end
 * checkpoint scripts. */
#include "dataset_fixture.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.h5\n", argv[0]);
        return 2;
    }
    fx_spec sp = fx_text_spec();
    sp.n[0] = 96;
    fx_write(argv[1], &sp);
    return 0;
}
