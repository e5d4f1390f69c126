"""CSK-Net: shared-conv / private-BN two-stream encoder, exchange, GSU, decoder, teacher."""
