/* classify_status / status_description: docs/protocol.md §3.10 (two tables,
 * reason text first). */
#include <gtest/gtest.h>

#include "rtms-types.h"

using rtms::StatusClass;
using rtms::StatusTable;
using rtms::classify_status;

TEST (StatusClass, ReasonTextDecidesFirst)
{
  EXPECT_EQ (classify_status (3, "invalid signature", true, StatusTable::OLD),
      StatusClass::SIGNATURE);
  EXPECT_EQ (classify_status (17, "duplicate signal request", true,
          StatusTable::NEW), StatusClass::DUPLICATE_SIGNAL);
  EXPECT_EQ (classify_status (8, "DUPLICATE_SIGNAL_REQUEST", true,
          StatusTable::OLD), StatusClass::DUPLICATE_SIGNAL);
  EXPECT_EQ (classify_status (15, "STATUS_INVALID_SIGNATURE", true,
          StatusTable::NEW), StatusClass::SIGNATURE);
  EXPECT_EQ (classify_status (20, "INVALID_MEDIA_AUDIO_SAMPLE_RATE", false,
          StatusTable::NEW), StatusClass::MEDIA_PARAMS);
}

TEST (StatusClass, CodesWithoutReason)
{
  EXPECT_EQ (classify_status (0, "", true, StatusTable::NEW), StatusClass::OK);
  /* new table */
  EXPECT_EQ (classify_status (3, "", true, StatusTable::NEW),
      StatusClass::SIGNATURE);
  EXPECT_EQ (classify_status (8, "", true, StatusTable::NEW),
      StatusClass::DUPLICATE_SIGNAL);
  EXPECT_EQ (classify_status (20, "", false, StatusTable::NEW),
      StatusClass::MEDIA_PARAMS);
  /* msg 2 codes above 8 can only be the old table, whatever the default */
  EXPECT_EQ (classify_status (15, "", true, StatusTable::NEW),
      StatusClass::SIGNATURE);
  EXPECT_EQ (classify_status (17, "", true, StatusTable::NEW),
      StatusClass::DUPLICATE_SIGNAL);
  EXPECT_EQ (classify_status (16, "", true, StatusTable::NEW),
      StatusClass::OTHER);
  /* old table on msg 4 */
  EXPECT_EQ (classify_status (39, "", false, StatusTable::OLD),
      StatusClass::MEDIA_PARAMS);
  EXPECT_EQ (classify_status (1, "", false, StatusTable::NEW),
      StatusClass::OTHER);
}

TEST (StatusClass, DescriptionNamesBothTablesWithoutReason)
{
  EXPECT_EQ (rtms::status_description (15, ""),
      "15 (new: MEDIA_DATA_ALL_CONNECTION_EXIST, old: INVALID_SIGNATURE)");
  EXPECT_EQ (rtms::status_description (8, "duplicate signal request"),
      "8 (duplicate signal request)");
}
