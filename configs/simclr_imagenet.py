"""SimCLR on ImageNet TFRecords: the reference's ResNet-50 pretraining command (google-research/simclr
README: batch 4096, 100 epochs, lr 0.3 per 256 = 4.8, weight decay 1e-6, tau 0.1, LARS).

ResNet-50 with the MLP projection head (2048 -> ReLU -> 128), NT-Xent over the global
batch at tau 0.1; LARS (eta 0.001, momentum 0.9, L2 1e-6 in the gradient; biases and
batch-norm parameters excluded), lr 0.3 x B/256 with 10 warm-up epochs and cosine decay;
colour strength 1.0 (brightness/contrast/saturation 0.8, hue 0.2) applied with p 0.8,
grayscale p 0.2, blur p 0.5 with sigma in [0.1, 2.0] and a 23-tap kernel at 224 px,
crops of 8-100% of the area. The paper's linear evaluation of its ResNet-50 (1x):
69.3% top-1 (Table 6, trained longer than this command's 100 epochs).

Differences from the reference: the head is the paper's 2-layer MLP without the tf2
code's batch norms (its default is SimCLRv2's 3 layers); batch norm is per replica
(Keras's ResNet-50 has no synchronized option; the reference uses global BN); the jitter
applies its four ops in a fixed order (the reference draws a random order); the loss
is the paper's mean over 2N anchors (the reference's is twice it).
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "simclr"
    c.dataset.name = "imagenet"
    c.dataset.data_dir = "/data/imagenet-tfrecords"
    c.dataset.image_size = 224
    c.augment.crop_scale_min = 0.08
    c.augment.color_jitter = 0.8  # 0.8 x strength 1.0
    c.augment.hue = 0.2  # 0.2 x strength 1.0
    c.augment.jitter_prob = 0.8
    c.augment.grayscale_prob = 0.2
    c.augment.blur_prob = 0.5
    c.augment.blur_sigma_min = 0.1
    c.augment.blur_sigma_max = 2.0
    c.model.backbone = "resnet50"
    c.model.head = "mlp"
    c.model.head_hidden = 0  # the backbone's 2048
    c.model.embedding_dim = 128
    c.simclr.temperature = 0.1
    c.optimizer.name = "lars"
    c.optimizer.learning_rate = 0.3  # per 256 images: 4.8 at batch 4096
    c.optimizer.reference_batch = 256
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 1e-6
    c.optimizer.lars_eta = 0.001
    c.optimizer.schedule = "cosine"
    c.optimizer.warmup_epochs = 10
    c.train.batch_size = 4096
    c.train.epochs = 100
    c.eval.knn_k = 200
    c.eval.knn_sigma = 0.1
    c.eval.every_epochs = 5
    c.eval.knn_at_init = False
    return c
