/* make_dataset OUT.h5 image|text: a small dataset of tests/dist/dataset_fixture.h
 * (96 train rows) for the end-to-end checkpoint scripts. */
#include "dataset_fixture.h"

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[2], "image") && strcmp(argv[2], "text"))) {
        fprintf(stderr, "usage: %s OUT.h5 image|text\n", argv[0]);
        return 2;
    }
    fx_spec sp = strcmp(argv[2], "image") ? fx_text_spec() : fx_image_spec();
    sp.n[0] = 96;
    fx_write(argv[1], &sp);
    return 0;
}
