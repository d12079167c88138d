import logging

from edge_runtime.logging_setup import quiet_logger


def test_quiet_logger_raises_the_level_for_the_block_and_restores_it(caplog):
    logger = logging.getLogger("i3dmtn.test.quiet")
    logger.setLevel(logging.INFO)
    with caplog.at_level(logging.INFO, logger="i3dmtn.test.quiet"):
        with quiet_logger("i3dmtn.test.quiet", logging.WARNING):
            logger.info("hidden")
            logger.warning("shown")
        logger.info("after")
    assert [r.getMessage() for r in caplog.records] == ["shown", "after"]
    assert logger.level == logging.INFO


def test_quiet_logger_never_lowers_a_stricter_level():
    logger = logging.getLogger("i3dmtn.test.strict")
    logger.setLevel(logging.ERROR)
    with quiet_logger("i3dmtn.test.strict", logging.WARNING):
        assert logger.level == logging.ERROR
    assert logger.level == logging.ERROR
