-- AlterTable
ALTER TABLE "SigningKey" ADD COLUMN "activatesAt" DATETIME;
ALTER TABLE "SigningKey" ADD COLUMN "removeAfter" DATETIME;
ALTER TABLE "SigningKey" ADD COLUMN "retiredAt" DATETIME;

-- CreateIndex
CREATE INDEX "SigningKey_state_idx" ON "SigningKey"("state");
