-- AlterTable
ALTER TABLE "OidcPayload" ADD COLUMN     "remainingUses" INTEGER;
