/**
 * Named training recipes: every setting a published run used, applied where the command line does
 * not set it. `paper` is section 5 of Krizhevsky et al. (2012): batch 128, momentum 0.9, weight
 * decay 0.0005, ε = 0.01 divided by 10 when the validation error stops improving (at most three
 * times), ~90 epochs ("roughly 90 cycles"), weights N(0, 0.01) and biases 1 in conv2, conv4, conv5
 * and the hidden fully connected layers, random crops and reflections, PCA colour noise σ = 0.1.
 */
export interface Recipe {
  describe: string;
  /** Values by the CLI option's property name, as commander parses them. */
  settings: Record<string, string | number | boolean>;
}

export const recipes: Record<string, Recipe> = {
  paper: {
    describe: 'Krizhevsky et al. (2012), section 5',
    settings: {
      epochs: 90,
      batch: 128,
      lr: 0.01,
      momentum: 0.9,
      weightDecay: 0.0005,
      schedule: 'plateau:1:3',
      init: 'paper',
      flip: true,
      pca: 0.1,
    },
  },
};
