-- AlterTable
ALTER TABLE "User" ADD COLUMN     "attributes" TEXT NOT NULL DEFAULT '{}';

-- AlterTable
ALTER TABLE "ResourceServer" ADD COLUMN     "claimMappings" TEXT NOT NULL DEFAULT '{}';
