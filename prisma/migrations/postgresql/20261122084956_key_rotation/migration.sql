-- AlterTable
ALTER TABLE "SigningKey" ADD COLUMN     "activatesAt" TIMESTAMP(3),
ADD COLUMN     "removeAfter" TIMESTAMP(3),
ADD COLUMN     "retiredAt" TIMESTAMP(3);

-- CreateIndex
CREATE INDEX "SigningKey_state_idx" ON "SigningKey"("state");
